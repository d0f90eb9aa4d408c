/** Runs a new store's init; a store that fails to open is closed, so it leaves no connection behind. */
export const initialised = async <S extends { init(): Promise<void>; close(): Promise<void> }>(
  store: S,
): Promise<S> => {
  try {
    await store.init()
  } catch (error) {
    await store.close()
    throw error
  }
  return store
}
