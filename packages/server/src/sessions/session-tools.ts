/**
 * SessionToolDirectory: the part of a store several host nodes share that lists, per
 * session, the session tools each node serves. A session tool lives in the registry of
 * the node it was registered on; the directory lets every other node list it and forward
 * its calls there (peers/forwarder.ts).
 */

/** A session tool as a node lists it: the node serving it and its encoded ToolSpec. */
export interface ListedSessionTool {
  readonly node: string;
  readonly spec: Uint8Array;
}

export interface SessionToolDirectory {
  /** Lists a tool of one session (its encoded ToolSpec) as served by this node. Throws SessionNotFound. */
  publish(sessionId: string, name: string, spec: Uint8Array): Promise<void>;
  /** Removes a session tool this node listed. */
  withdraw(sessionId: string, name: string): Promise<void>;
  /** The session tools of every node, by name. */
  list(sessionId: string): Promise<ReadonlyMap<string, ListedSessionTool>>;
}
