"""The error catalogue of contract §0.4: each error knows its HTTP status, code, title and detail.

Raise one (`raise ParamNotAllowed("balance")`) or several (`raise ErrorList([...])`); the one
renderer in `document.py` turns them into `{"errors": [...]}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def ruby_text(value: object) -> str:
    """A request value inside a detail, as Ruby's to_s renders it (true, false, nil -> "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class JsonApiError(Exception):
    status = 400
    code = "400"
    title = "Bad Request"
    # seconds after which a retry may succeed, sent as Retry-After (409, 429, 503)
    retry_after: int | None = None

    def __init__(self, detail: str, *, pointer: str | None = None, title: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        if title is not None:
            self.title = title

    def as_dict(self) -> dict[str, object]:
        # contract §0.4: title, detail, code, source, status; code and status are strings
        error: dict[str, object] = {"title": self.title, "detail": self.detail, "code": self.code}
        if self.pointer is not None:
            error["source"] = {"pointer": self.pointer}
        error["status"] = str(self.status)
        return error


class ErrorList(Exception):
    """Several errors answered together; the HTTP status is that of the first."""

    def __init__(self, errors: Sequence[JsonApiError]):
        super().__init__(", ".join(error.detail for error in errors))
        self.errors = list(errors)

    @property
    def status(self) -> int:
        return self.errors[0].status


def flatten(error: JsonApiError | ErrorList) -> list[JsonApiError]:
    return error.errors if isinstance(error, ErrorList) else [error]


class ValidationFailed(JsonApiError):
    """code 100: a model or form validation; title is the message, detail is `<key> - <message>`."""

    status = 422
    code = "100"

    def __init__(self, message: str, *, key: str | None, pointer: str):
        detail = message if key is None else f"{key} - {message}"
        super().__init__(detail, pointer=pointer, title=message)
        self.message = message
        self.key = key


class InvalidResource(JsonApiError):
    code, title = "101", "Invalid resource"

    def __init__(self, resource_type: str):
        super().__init__(f"{ruby_text(resource_type)} is not a valid resource.")


class FilterNotAllowed(JsonApiError):
    code, title = "102", "Filter not allowed"

    def __init__(self, name: str):
        super().__init__(f"{name} is not allowed.")


class InvalidFieldValue(JsonApiError):
    code, title = "103", "Invalid field value"

    def __init__(self, value: object, field: str = "id"):
        super().__init__(f"{ruby_text(value)} is not a valid value for {field}.")


class InvalidField(JsonApiError):
    code, title = "104", "Invalid field"

    def __init__(self, field: str, resource_type: str):
        super().__init__(f"{field} is not a valid field for {resource_type}.")


class ParamNotAllowed(JsonApiError):
    code, title = "105", "Param not allowed"

    def __init__(self, key: str):
        super().__init__(f"{key} is not allowed.")


class MissingParameter(JsonApiError):
    code, title = "106", "Missing Parameter"

    def __init__(self, parameter: str):
        super().__init__(f"The required parameter, {parameter}, is missing.")


class InvalidFilterValue(JsonApiError):
    code, title = "107", "Invalid filter value"

    def __init__(self, values: Iterable[str], name: str):
        super().__init__(f"{','.join(values)} is not a valid value for {name}.")


class TooManyFilterValues(JsonApiError):
    """107 for a list longer than the server takes (issue 6); the values are not echoed."""

    code, title = "107", "Invalid filter value"

    def __init__(self, name: str, limit: int):
        super().__init__(f"Too many values for {name}: at most {limit}.")


class KeyRequired(JsonApiError):
    code, title = "109", "A key is required"

    def __init__(self) -> None:
        super().__init__("The resource object does not contain a key.")


class KeyNotIncludedInUrl(JsonApiError):
    code, title = "110", "Key is not included in URL"

    def __init__(self, key: object):
        super().__init__(f"The URL does not support the key {ruby_text(key)}")


class InvalidInclude(JsonApiError):
    code, title = "112", "Invalid field"

    def __init__(self, include: str, resource_type: str):
        super().__init__(f"{include} is not a valid relationship of {resource_type}")


class InvalidSortCriteria(JsonApiError):
    code, title = "114", "Invalid sort criteria"

    def __init__(self, field: str, resource_type: str):
        super().__init__(f"{field} is not a valid sort criteria for {resource_type}")


class InvalidLinksObject(JsonApiError):
    code, title = "115", "Invalid Links Object"

    def __init__(self) -> None:
        super().__init__("Data is not a valid Links Object.")


class TypeMismatch(JsonApiError):
    code, title = "116", "Type Mismatch"

    def __init__(self, resource_type: object):
        super().__init__(f"{resource_type} is not a valid type for this operation.")


class InvalidPageValue(JsonApiError):
    code, title = "118", "Invalid page value"


class InvalidFieldFormat(JsonApiError):
    code, title = "119", "Invalid field format"

    def __init__(self) -> None:
        super().__init__("Fields must specify a type.")


class InvalidFiltersSyntax(JsonApiError):
    code, title = "120", "Invalid filters syntax"

    def __init__(self, raw: str):
        super().__init__(f"{raw} is not a valid syntax for filtering.")


class SaveFailed(JsonApiError):
    status, code, title = 422, "121", "Save failed or was cancelled"

    def __init__(self) -> None:
        super().__init__("Save failed or was cancelled")


class InvalidDataFormat(JsonApiError):
    code, title = "122", "Invalid data format"

    def __init__(self) -> None:
        super().__init__("Data must be a hash.")


class BadRequest(JsonApiError):
    code, title = "400", "Bad Request"


class AuthenticationRequired(JsonApiError):
    status, code, title = 401, "401", "Authentication failed"

    def __init__(self) -> None:
        super().__init__("Authentication token is missing, invalid or expired.")


class Forbidden(JsonApiError):
    status, code, title = 403, "403", "Forbidden"


class RecordNotFound(JsonApiError):
    status, code, title = 404, "404", "Record not found"

    def __init__(self, key: object):
        super().__init__(f"The record identified by {key} could not be found.")


class RouteNotFound(JsonApiError):
    status, code, title = 404, "404", "Not Found"

    def __init__(self) -> None:
        super().__init__("The requested path does not exist.")


class MethodNotAllowed(JsonApiError):
    status, code, title = 405, "405", "Method Not Allowed"

    def __init__(self, method: str) -> None:
        super().__init__(f"{method} is not allowed on this path.")


class NotAcceptable(JsonApiError):
    status, code, title = 406, "406", "Not acceptable"

    def __init__(self, accept: str):
        super().__init__(
            "All requests must use the 'application/vnd.api+json' Accept without media type "
            f"parameters. This request specified '{accept}'."
        )


class PreconditionFailed(JsonApiError):
    status, code, title = 412, "412", "Precondition Failed"

    def __init__(self) -> None:
        super().__init__(
            "The record has changed since the ETag given in If-Match; read it again and retry."
        )


class Conflict(JsonApiError):
    status, code, title = 409, "409", "Conflict"


class LockTimeout(Conflict):
    """A row this write needs stayed locked by another transaction past the lock timeout."""

    retry_after = 1

    def __init__(self) -> None:
        super().__init__("The record is being changed by another request; retry in a moment.")


class UriTooLong(JsonApiError):
    status, code, title = 414, "414", "URI Too Long"

    def __init__(self, limit: int):
        super().__init__(f"The query string exceeds the limit of {limit} bytes.")


class HeaderFieldsTooLarge(JsonApiError):
    status, code, title = 431, "431", "Request Header Fields Too Large"

    def __init__(self, limit: int):
        super().__init__(f"The request headers exceed the limit of {limit} bytes.")


class ServiceUnavailable(JsonApiError):
    """The database is unreachable, overloaded or too slow: nothing was done, retry later."""

    status, code, title = 503, "503", "Service Unavailable"
    retry_after = 5


class UnprocessableRequest(JsonApiError):
    status, code, title = 422, "422", "Unprocessable Request"


class PayloadTooLarge(JsonApiError):
    status, code, title = 413, "413", "Payload Too Large"

    def __init__(self, limit: int):
        super().__init__(f"The request body exceeds the limit of {limit} bytes.")


class UnsupportedMediaType(JsonApiError):
    status, code, title = 415, "415", "Unsupported media type"

    def __init__(self, media_type: str):
        super().__init__(
            "All requests that create or update must use the 'application/vnd.api+json' "
            f"Content-Type. This request specified '{media_type}'."
        )


class InternalServerError(JsonApiError):
    status, code, title = 500, "500", "Internal Server Error"

    def __init__(self) -> None:
        super().__init__("Internal Server Error")
