/**
 * NodeDirectory: the part of a store several host nodes share that lists the nodes, where
 * each one is reached and whether it serves TLS there, so that a call reaching one node can
 * be forwarded to the node serving its tool (peers/forwarder.ts, docs/stores.md), and keeps
 * the token the nodes forward calls to each other with.
 */

/** A node in the directory: where the other nodes reach it, and whether it serves TLS there. */
export interface NodeEntry {
  readonly address: string;
  readonly tls: boolean;
}

export interface NodeDirectory {
  /** This node's name, unique among the nodes sharing the store. */
  readonly nodeId: string;
  /** Lists this node (its gRPC address and transport) in the directory, and keeps it there while it runs. */
  advertise(entry: NodeEntry): Promise<void>;
  /** Takes this node out of the directory. */
  withdraw(): Promise<void>;
  /** A node's entry in the directory; undefined when it is gone. */
  entry(node: string): Promise<NodeEntry | undefined>;
  /** Every node in the directory, by node name (DescribeHost). */
  nodes(): Promise<ReadonlyMap<string, NodeEntry>>;
  /** The token the nodes forward calls to each other with (made by the first node that asks). */
  peerToken(): Promise<string>;
}
