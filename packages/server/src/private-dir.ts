/**
 * Private socket directories in the system's temporary directory, and the removal of those
 * that processes gone without cleaning up (a host killed with SIGKILL) left behind.
 *
 * A directory's name carries its owner's process id (`toolbridge-host-4242-AbC123`), so that
 * nothing has to be written into it to say whose it is (a record half written by a process
 * that died could not be trusted). A directory is stale when that process is gone and none
 * of the sockets in it answers: a live host's or worker's socket accepts a connection even
 * when its process is stopped, and a pid that another pid namespace reuses keeps the check
 * on the sockets honest.
 */
import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The kinds of private directory: a host's (its internal socket, its workers'), a pool's of its own. */
export type PrivateDirKind = "toolbridge-host" | "toolbridge-workers";

const OWNED = /^toolbridge-(?:host|workers)-(\d+)-[A-Za-z0-9]+$/;
/** How long a socket may take to accept before it counts as live (a dead one refuses at once). */
const CONNECT_WAIT_MS = 1000;

/** A new directory only this user may enter (mode 0700), named for this process. */
export function makePrivateDir(kind: PrivateDirKind, parent = tmpdir()): string {
  return mkdtempSync(join(parent, `${kind}-${process.pid}-`));
}

/**
 * Removes the private directories in `parent` whose owner process is gone and whose sockets
 * all refuse connections; resolves with the paths removed. Never touches another user's
 * directory, a symbolic link, a name of another form, or a directory it cannot read.
 */
export async function removeStaleDirs(parent = tmpdir()): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(OWNED.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    const path = join(parent, name);
    try {
      const stats = lstatSync(path);
      if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid)) continue;
      if (await anySocketAnswers(path)) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Gone meanwhile (another starting host removed it) or not ours to remove: left alone.
    }
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function anySocketAnswers(directory: string): Promise<boolean> {
  const sockets = readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isSocket())
    .map((entry) => join(directory, entry.name));
  const live = await Promise.all(sockets.map(accepts));
  return live.includes(true);
}

/** Whether something accepts connections on the Unix socket at `path`. */
function accepts(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(path);
    const done = (live: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(live);
    };
    // No answer either way yet: counted as live, the safe side.
    const timer = setTimeout(() => done(true), CONNECT_WAIT_MS);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
