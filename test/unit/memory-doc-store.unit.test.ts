import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { docStoreContract } from '../contract/doc-store.contract.js'

docStoreContract('memory', () => new MemoryDocStore())
