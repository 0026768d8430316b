/** Types of cluster-key-slot (the Redis Cluster hash slot of a key, as ioredis computes it), which ships none. */
declare module "cluster-key-slot" {
  /** The slot (0-16383) of a key: CRC16 of its hash tag ({...}) when it has one, else of the whole key. */
  export default function calculateSlot(key: string | Buffer): number;
}
