import { field } from '../field.js';

/**
 * Several nodes on one Kafka journal topic (see engine/cluster.ts): who this node is, where the
 * other members reach it, and how fast a dead member's partitions move.
 */
export const clusterFields = [
  field({
    key: 'cluster.enabled',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_CLUSTER',
    doc:
      'Join the cluster of the Kafka journal topic: each partition owned by one live member, ' +
      'requests for the others forwarded to their owner. `stockade serve --journal kafka` ' +
      'turns it on; the file journal is single-node.',
  }),
  field({
    key: 'cluster.nodeId',
    kind: 'string',
    min: 0,
    max: 128,
    pattern: /^[A-Za-z0-9._:-]*$/,
    patternDoc: 'up to 128 chars of `A-Z a-z 0-9 . _ : -`',
    default: '',
    env: 'STOCKADE_NODE_ID',
    doc: 'This member’s name in `GET /v1/cluster` and the logs; empty: `<hostname>-<pid>`.',
  }),
  field({
    key: 'cluster.listen',
    kind: 'string',
    min: 3,
    max: 262,
    pattern: /^[^\s/]+:\d{1,5}$/,
    patternDoc: '`host:port`',
    default: '127.0.0.1:0',
    env: 'STOCKADE_CLUSTER_LISTEN',
    doc:
      'Where this member listens for the requests other members forward to it (HTTP, one ' +
      'long-lived connection per peer); port 0 picks a free port. With `cluster.advertise` ' +
      'set and this left at its default, the advertised port on all interfaces.',
  }),
  field({
    key: 'cluster.advertise',
    kind: 'string',
    min: 0,
    max: 2048,
    pattern: /^(https?:\/\/[^\s/]+)?$/,
    patternDoc: 'empty, or `http://host:port`',
    default: '',
    env: 'STOCKADE_ADVERTISE',
    doc:
      'How the other members reach this one, `http://host:port`; empty: the address it ' +
      'listens on (fine for members on one machine).',
  }),
  field({
    key: 'cluster.secret',
    kind: 'string',
    min: 0,
    max: 4096,
    default: '',
    env: 'STOCKADE_CLUSTER_SECRET',
    doc:
      'Shared by the members: a forwarded request must carry it (it names its buyer). ' +
      'Required when the member listens beyond the loopback interface.',
  }),
  field({
    key: 'cluster.sessionTimeoutMs',
    kind: 'int',
    min: 1_000,
    max: 300_000,
    default: 6_000,
    env: 'STOCKADE_CLUSTER_SESSION_TIMEOUT_MS',
    doc:
      'A member silent this long is taken for dead and its partitions move (Kafka’s ' +
      '`group.min.session.timeout.ms`, 6 s by default, is the floor the brokers accept).',
  }),
  field({
    key: 'cluster.heartbeatIntervalMs',
    kind: 'int',
    min: 100,
    max: 60_000,
    default: 1_000,
    env: 'STOCKADE_CLUSTER_HEARTBEAT_INTERVAL_MS',
    doc: 'How often a member tells the group it is alive; at most a third of the session timeout.',
  }),
  field({
    key: 'cluster.forwardTimeoutMs',
    kind: 'int',
    min: 100,
    max: 600_000,
    default: 10_000,
    env: 'STOCKADE_CLUSTER_FORWARD_TIMEOUT_MS',
    doc:
      'Longest a forwarded batch may wait for its owner’s answer; past it its requests get ' +
      'the retriable `shard_unavailable` (retry with the same idempotency key).',
  }),
] as const;
