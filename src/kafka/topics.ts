import type { Admin } from 'kafkajs'
import type { Topics } from './cloudevents.js'

/** Creates the topics that are missing; an existing topic is left as it is. */
export const ensureTopics = async (
  admin: Admin,
  topics: Topics,
  partitions: number,
  replicationFactor: number,
): Promise<string[]> => {
  const existing = new Set(await admin.listTopics())
  const missing = Object.values(topics).filter((t) => !existing.has(t))
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
    })
  }
  return missing
}
