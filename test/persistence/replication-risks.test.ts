// What makes a Kafka topic lose an acknowledged append (no broker needed).
import t from 'tap';
import { replicationRisks } from '../../persistence/journal/index.js';

const safe = {
  topic: 't',
  brokers: 3,
  replicationFactor: 3,
  minInsyncReplicas: 2,
  uncleanLeaderElection: false,
};

t.test('3 replicas, 2 in sync, no unclean election: nothing to say', async (t) => {
  t.same(replicationRisks(safe), []);
  t.same(replicationRisks({ ...safe, brokers: 5, replicationFactor: 2 }), []);
});

t.test('each way to lose an acknowledged append is named', async (t) => {
  t.same(replicationRisks({ ...safe, brokers: 1, replicationFactor: 1, minInsyncReplicas: 1 }), [
    'replication factor 1 (the cluster has 1 broker)',
    'min.insync.replicas 1',
  ]);
  t.same(replicationRisks({ ...safe, replicationFactor: 1 }), ['replication factor 1']);
  t.same(replicationRisks({ ...safe, minInsyncReplicas: 1 }), ['min.insync.replicas 1']);
  t.same(replicationRisks({ ...safe, uncleanLeaderElection: true }), [
    'unclean.leader.election.enable=true',
  ]);
});
