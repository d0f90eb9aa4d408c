// The services the tests need, started in containers where a Docker engine is reachable: testcontainers (the 11.x
// line, which runs on Node 20) starts each image once per test process, the first time a test asks for it, and
// stops it when the process ends (its reaper container removes whatever a killed process leaves). Without an
// engine nothing is started and the tests use the local services, saying so once.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { StartedTestContainer } from 'testcontainers'

/** The images, pinned by tag: those docker-compose.yml runs. */
export const IMAGES = {
  postgres: 'postgres:16',
  kafka: 'apache/kafka:4.1.1',
  kurrentdb: 'kurrentplatform/kurrentdb:25.0',
} as const
export type ContainerService = keyof typeof IMAGES

const STARTUP_MS = 180_000

/** Where an engine may answer; with none of these, testcontainers is not even loaded (it takes seconds to). */
const engineHints = (): boolean => {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE) return true
  const home = homedir()
  const runtimeDir = process.env.XDG_RUNTIME_DIR
  return [
    '/var/run/docker.sock',
    join(home, '.testcontainers.properties'),
    join(home, '.docker', 'run', 'docker.sock'),
    join(home, '.docker', 'desktop', 'docker.sock'),
    ...(runtimeDir ? [join(runtimeDir, 'docker.sock')] : []),
  ].some((path) => existsSync(path))
}

let engine: Promise<boolean> | undefined
let toldNoEngine = false

/** Whether a Docker engine answers, asked once per process: testcontainers tries each way it knows to reach one. */
export const dockerEngine = (): Promise<boolean> => {
  engine ??= (async () => {
    if (!engineHints()) return false
    try {
      const { getContainerRuntimeClient } = await import('testcontainers')
      await getContainerRuntimeClient()
      return true
    } catch {
      return false
    }
  })()
  return engine
}

/** Says once per test process that the local services stand in for containers. */
export const usingLocalServices = (): void => {
  if (toldNoEngine) return
  toldNoEngine = true
  console.log(
    'no Docker engine: using the local services (PostgreSQL at POSTGRES_URL or 127.0.0.1:5432, Kafka at KAFKA_BROKERS, KurrentDB at KURRENTDB_URL)',
  )
}

const started = new Map<ContainerService, Promise<string>>()

/** Stops the container when the process is about to end; the reaper covers a process that is killed. */
const stopAtExit = (container: StartedTestContainer): void => {
  process.once('beforeExit', () => {
    void container.stop().catch(() => {})
  })
}

const startPostgres = async (): Promise<string> => {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const container = await new PostgreSqlContainer(IMAGES.postgres).withStartupTimeout(STARTUP_MS).start()
  stopAtExit(container)
  return container.getConnectionUri()
}

/**
 * Apache Kafka, one KRaft node as in docker-compose.yml. Its advertised address must name the port Docker maps,
 * known only once the container runs: the container waits for a start script, written in once the port is known.
 */
const startKafka = async (): Promise<string> => {
  const { GenericContainer, Wait } = await import('testcontainers')
  const { Kafka, logLevel } = await import('kafkajs')
  const script = '/tmp/start-kafka.sh'
  const waiting = 'waiting for the start script'
  const container = await new GenericContainer(IMAGES.kafka)
    .withEnvironment({
      CLUSTER_ID: '4L6g3nShT-eMCtK--X86sw',
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
      KAFKA_LISTENERS: 'BROKER://:9092,CONTROLLER://:9093,HOST://:9094',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT,HOST:PLAINTEXT',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_NUM_PARTITIONS: '3',
    })
    .withExposedPorts(9094)
    .withEntrypoint(['sh'])
    .withCommand(['-c', `echo '${waiting}'; while [ ! -f ${script} ]; do sleep 0.1; done; bash ${script}`])
    .withWaitStrategy(Wait.forLogMessage(waiting))
    .withStartupTimeout(STARTUP_MS)
    .start()
  stopAtExit(container)
  const brokers = `${container.getHost()}:${container.getMappedPort(9094)}`
  await container.copyContentToContainer([
    {
      content: `#!/bin/bash\nexport KAFKA_ADVERTISED_LISTENERS=BROKER://localhost:9092,HOST://${brokers}\nexec /etc/kafka/docker/run\n`,
      target: script,
      mode: 0o644,
    },
  ])
  // ready once a client gets the cluster's metadata through the advertised address
  const admin = new Kafka({
    clientId: 'test-containers',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 },
  }).admin()
  await admin.connect()
  try {
    await admin.describeCluster()
  } finally {
    await admin.disconnect()
  }
  return brokers
}

/** KurrentDB, one insecure node as in docker-compose.yml: no TLS, no authentication, only for tests. */
const startKurrentDb = async (): Promise<string> => {
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(IMAGES.kurrentdb)
    .withEnvironment({
      KURRENTDB_CLUSTER_SIZE: '1',
      KURRENTDB_RUN_PROJECTIONS: 'None',
      KURRENTDB_INSECURE: 'true',
      KURRENTDB_NODE_PORT: '2113',
    })
    .withExposedPorts(2113)
    .withWaitStrategy(
      Wait.forHttp('/health/live', 2113).forStatusCodeMatching((status) => status >= 200 && status < 300),
    )
    .withStartupTimeout(STARTUP_MS)
    .start()
  stopAtExit(container)
  return `kurrentdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`
}

const starters: Record<ContainerService, () => Promise<string>> = {
  postgres: startPostgres,
  kafka: startKafka,
  kurrentdb: startKurrentDb,
}

/**
 * The address of the service in a container of this process, started on first use; null without a Docker
 * engine (the caller uses the local service). A container that does not start is an error, named.
 */
export const containerFor = async (service: ContainerService): Promise<string | null> => {
  if (!(await dockerEngine())) {
    usingLocalServices()
    return null
  }
  let address = started.get(service)
  if (!address) {
    address = starters[service]().then(
      (found) => {
        console.log(`started ${IMAGES[service]} in a container for this test process`)
        return found
      },
      (error: unknown) => {
        const why = error instanceof Error ? error.message : String(error)
        throw new Error(`the ${IMAGES[service]} container did not start: ${why}`, { cause: error })
      },
    )
    started.set(service, address)
  }
  return address
}
