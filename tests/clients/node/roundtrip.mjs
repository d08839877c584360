// Issue 8: kitsu (npm), a JSON:API client, against the real service. Run by
// tests/api/test_node_client.py, or by hand against `make run`:
//
//   ACCOUNTS_API_URL=http://127.0.0.1:8000/api/rest/admin ACCOUNTS_API_TOKEN=<jwt> node roundtrip.mjs
//
// Each step uses kitsu as its documentation shows, with its defaults. On a mismatch or a
// refused request it prints what differed and exits 1; on success it prints one JSON line of
// the ids it made, for the caller to check the database by.
import { isDeepStrictEqual } from 'node:util'

import Kitsu from 'kitsu'

const baseURL = process.env.ACCOUNTS_API_URL
const token = process.env.ACCOUNTS_API_TOKEN
if (!baseURL || !token) {
  console.error('roundtrip.mjs: set ACCOUNTS_API_URL and ACCOUNTS_API_TOKEN')
  process.exit(2)
}

// contract §1.3: the JWT alone in the Authorization header
const api = new Kitsu({ baseURL, headers: { Authorization: token }, timeout: 30000 })

// the bodies kitsu sends (before axios encodes them), to show that it sends fetched objects
// back whole
const sent = []
api.interceptors.request.use((config) => {
  sent.push(config.data)
  return config
})

class Mismatch extends Error {}

function check (condition, message, actual) {
  if (!condition) {
    throw new Mismatch(`${message}${actual === undefined ? '' : `: got ${JSON.stringify(actual)}`}`)
  }
}

function equal (actual, expected, message) {
  check(isDeepStrictEqual(actual, expected),
    `${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

// A kitsu defect (kitsu-core 11.1.0): it reads an empty to-one relationship
// (`"invoice-template": {"links": {...}, "data": null}`) as `{links}` without its `data`, then
// serialises that as an *attribute* `invoice-template`, which the service refuses (400, 105:
// not an attribute). A kitsu user saving a fetched object puts the null back; kitsu then sends
// the relationship as it was read.
function restoreEmptyRelationships (object) {
  for (const value of Object.values(object)) {
    if (value?.links?.related && !('data' in value)) value.data = null
  }
}

let step = 'start'

async function main () {
  step = 'create a contractor'
  const contractor = (await api.post('contractors', {
    name: 'node-co', enabled: true, vendor: false, customer: true
  })).data
  check(contractor.id, 'the created contractor has no id', contractor)

  step = 'create accounts'
  const accounts = []
  for (const name of ['node-a1', 'node-a2', 'node-a3']) {
    const created = await api.post('accounts', {
      name,
      currency: 'USD',
      contractor: { data: { type: 'contractors', id: contractor.id } }
    })
    equal(created.status, 201, `status of the create of ${name}`)
    equal([created.data.name, created.data.balance], [name, '0.0'], `the created ${name}`)
    accounts.push(created.data)
  }
  const [first, , third] = accounts

  step = 'list accounts with include=contractor'
  const listed = await api.get('accounts', { params: { include: 'contractor', sort: 'name' } })
  equal(listed.data.map((account) => account.name), ['node-a1', 'node-a2', 'node-a3'], 'listed names')
  // kitsu links the relationship to the `included` object
  equal(listed.data[0].contractor.data.name, 'node-co', 'the included contractor of node-a1')
  equal(listed.meta, { 'total-count': 3 }, 'meta of the list')

  step = 'pay into an account'
  // a payment moves the balance: the object sent back below carries a read-only balance
  // that is not the default
  await api.post('payments', {
    amount: '12.5', account: { data: { type: 'accounts', id: first.id } }
  })

  step = 'fetch, modify and save an account'
  const fetched = (await api.get(`accounts/${first.id}`)).data
  equal(fetched.balance, '12.5', 'balance after the payment')
  fetched['max-balance'] = '100'
  restoreEmptyRelationships(fetched)
  const saved = await api.patch('accounts', fetched)
  const patch = sent.at(-1)
  // sent back whole, as kitsu serialises it: links, read-only attributes, relationship links
  check(patch.data.links?.self, 'kitsu did not send the links back', patch)
  equal(patch.data.attributes.balance, '12.5', 'the read-only balance sent back')
  check(patch.data.relationships?.contractor?.links, 'relationship links not sent back', patch)
  equal([saved.data['max-balance'], saved.data.balance], ['100.0', '12.5'], 'the saved account')

  step = 'read a relationship'
  const linkage = await api.get(`accounts/${first.id}/relationships/contractor`)
  equal(linkage.data, { id: contractor.id, type: 'contractors' }, 'the contractor linkage')
  const related = await api.get(`accounts/${first.id}/contractor`)
  equal([related.data.id, related.data.name], [contractor.id, 'node-co'], 'the related contractor')

  step = 'paginate'
  const names = []
  let page = await api.get('accounts', { params: { page: { size: 2, number: 1 }, sort: 'name' } })
  let pages = 1
  for (;;) {
    names.push(...page.data.map((account) => account.name))
    if (!page.links?.next) break
    check(pages < 10, 'pagination does not end', page.links)
    // a `next` link is absolute; axios leaves baseURL aside for it
    page = await api.request({ url: page.links.next })
    pages += 1
  }
  equal(names, ['node-a1', 'node-a2', 'node-a3'], 'names over the pages')
  equal(pages, 2, 'pages of two')

  step = 'delete an account'
  const deleted = await api.delete('accounts', third.id)
  equal(deleted.status, 204, 'status of the delete')
  let status
  try {
    await api.get(`accounts/${third.id}`)
  } catch (error) {
    status = error.response?.status
  }
  equal(status, 404, 'status of a read of the deleted account')

  console.log(JSON.stringify({
    contractor: contractor.id,
    saved: first.id,
    kept: accounts[1].id,
    deleted: third.id
  }))
}

try {
  await main()
} catch (error) {
  if (error instanceof Mismatch) {
    console.error(`roundtrip.mjs: ${step}: ${error.message}`)
  } else if (error.response) {
    const { method, url } = error.config ?? {}
    console.error(`roundtrip.mjs: ${step}: ${method?.toUpperCase()} ${url} answered ` +
      `${error.response.status}: ${JSON.stringify(error.response.data)}` +
      (sent.at(-1) ? `; the body sent: ${JSON.stringify(sent.at(-1))}` : ''))
  } else {
    console.error(`roundtrip.mjs: ${step}: ${error.stack ?? error}`)
  }
  process.exit(1)
}
