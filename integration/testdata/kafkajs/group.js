// Produces N records with kafkajs, then consumes them with a kafkajs group
// consumer (auto-commit) and prints a JSON summary on stdout.
// Environment: BROKERS (comma-separated), TOPIC, GROUP, N.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const brokers = process.env.BROKERS.split(',');
const topic = process.env.TOPIC;
const groupId = process.env.GROUP;
const n = parseInt(process.env.N, 10);

async function main() {
  const kafka = new Kafka({ clientId: 'chronik-kafkajs', brokers, logLevel: logLevel.WARN, retry: { retries: 10 } });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < n; i++) messages.push({ value: `js-${String(i).padStart(5, '0')}` });
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const seen = new Set();
  const next = new Map(); // partition -> offset after the last record consumed
  await new Promise((resolve, reject) => {
    consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) => {
        seen.add(message.value.toString());
        next.set(partition, Math.max(next.get(partition) || 0, Number(message.offset) + 1));
        if (seen.size >= n) resolve();
      },
    }).catch(reject);
  });
  // Auto-commit runs after a batch is processed; a consumer that reads
  // everything within one interval has nothing more to process, so commit
  // what it consumed explicitly before leaving.
  await consumer.commitOffsets([...next].map(([partition, offset]) => ({ topic, partition, offset: String(offset) })));
  await consumer.disconnect(); // leaves the group
  process.stdout.write(JSON.stringify({ produced: n, consumed: seen.size }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`kafkajs: ${err.stack || err}\n`);
  process.exit(1);
});
