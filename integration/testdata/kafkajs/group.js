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
  await new Promise((resolve, reject) => {
    consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString());
        if (seen.size >= n) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect(); // commits the resolved offsets, leaves the group
  process.stdout.write(JSON.stringify({ produced: n, consumed: seen.size }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`kafkajs: ${err.stack || err}\n`);
  process.exit(1);
});
