// Make the collections db-init-post/ expects through a running Directus's REST
// API, as a person would in the app: four plain collections and four
// many-to-many junctions, two of them to directus_users. Then `directus schema
// snapshot` writes the snapshot the tests apply (tests/directus/make-snapshot.sh
// does both).
//
//   node make-snapshot.mjs http://127.0.0.1:PORT ADMIN_EMAIL ADMIN_PASSWORD
const [base, email, password] = process.argv.slice(2);

async function call(method, path, body, token) {
    const res = await fetch(base + path, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
}

const login = await call('POST', '/auth/login', { email, password });
const token = login.data.access_token;

const id = { field: 'id', type: 'integer', meta: { hidden: true, readonly: true, interface: 'input' },
             schema: { is_primary_key: true, has_auto_increment: true } };
const text = (field) => ({ field, type: 'string', meta: { interface: 'input', required: true }, schema: { is_nullable: false } });
const m2m = (field) => ({ field, type: 'alias', meta: { special: ['m2m'], interface: 'list-m2m' } });

// The "one" sides.
for (const [name, icon, fields] of [
    ['organizations', 'corporate_fare', [text('name'), m2m('users'), m2m('vehicles'), m2m('devices')]],
    ['vehicles', 'local_shipping', [text('plate')]],
    ['devices', 'router', [text('serial')]],
    ['events', 'event', [text('title'), { field: 'starts_at', type: 'timestamp', meta: { interface: 'datetime' } }, m2m('participants')]],
]) {
    await call('POST', '/collections', { collection: name, meta: { icon }, schema: {}, fields: [id, ...fields] }, token);
}

// The junctions: id primary key, two foreign keys, nothing that makes the pair
// unique (which is what db-init-post/ adds).
for (const [junction, left, leftKey, leftAlias, right, rightKey, rightType] of [
    ['organization_users', 'organizations', 'organization_id', 'users', 'directus_users', 'user_id', 'uuid'],
    ['organization_vehicles', 'organizations', 'organization_id', 'vehicles', 'vehicles', 'vehicle_id', 'integer'],
    ['organization_devices', 'organizations', 'organization_id', 'devices', 'devices', 'device_id', 'integer'],
    ['event_participants', 'events', 'event_id', 'participants', 'directus_users', 'user_id', 'uuid'],
]) {
    await call('POST', '/collections', {
        collection: junction, meta: { hidden: true, icon: 'import_export' }, schema: {},
        fields: [id, { field: leftKey, type: 'integer', meta: { hidden: true } },
                 { field: rightKey, type: rightType, meta: { hidden: true } }],
    }, token);
    await call('POST', '/relations', {
        collection: junction, field: leftKey, related_collection: left,
        meta: { one_field: leftAlias, junction_field: rightKey, sort_field: null }, schema: { on_delete: 'CASCADE' },
    }, token);
    await call('POST', '/relations', {
        collection: junction, field: rightKey, related_collection: right,
        meta: { one_field: null, junction_field: leftKey }, schema: { on_delete: 'CASCADE' },
    }, token);
}
