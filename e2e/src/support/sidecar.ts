/**
 * A sidecar group on GenericContainer: one ferryd container and app containers that share only
 * the directory holding ferryd's socket (a host directory, mode 1777, mounted at /run/ferry).
 * Each app has its own network (a network of the group, for plain TCP between apps) and IPC
 * namespace and runs as its own uid in ferryd's group (the socket is mode 0660).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Network, type StartedNetwork, type StartedTestContainer, Wait } from 'testcontainers';
import { InitContainer } from './containers.js';
import { ensureImages, IMAGES } from './images.js';

export class SidecarGroup {
  readonly dir: string;
  readonly network: StartedNetwork;
  readonly ferryd: StartedTestContainer;
  readonly #apps: StartedTestContainer[] = [];

  private constructor(dir: string, network: StartedNetwork, ferryd: StartedTestContainer) {
    this.dir = dir;
    this.network = network;
    this.ferryd = ferryd;
  }

  static async start(): Promise<SidecarGroup> {
    await ensureImages();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-sidecar-'));
    chmodSync(dir, 0o1777);
    let network: StartedNetwork | undefined;
    try {
      network = await new Network().start();
      const ferryd = await new InitContainer(IMAGES.ferryd)
        .withInit()
        .withNetworkMode('none')
        .withBindMounts([{ source: dir, target: '/run/ferry', mode: 'rw' }])
        .withWaitStrategy(Wait.forLogMessage('listening on'))
        .withStartupTimeout(30_000)
        .start();
      return new SidecarGroup(dir, network, ferryd);
    } catch (err) {
      await network?.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Starts an app container (uid `uid`, gid 1000) running `command`; waits for `waitFor` in its log. */
  async app(uid: number, alias: string, command: string[], waitFor?: string): Promise<StartedTestContainer> {
    let c = new InitContainer(IMAGES.app)
      .withInit()
      .withUser(`${uid}:1000`)
      .withIpcMode('private')
      .withNetwork(this.network)
      .withNetworkAliases(alias)
      .withBindMounts([{ source: this.dir, target: '/run/ferry', mode: 'rw' }])
      .withCommand(command)
      .withStartupTimeout(30_000);
    if (waitFor) c = c.withWaitStrategy(Wait.forLogMessage(waitFor));
    const started = await c.start();
    this.#apps.push(started);
    return started;
  }

  /** An echo server app listening on `tcp://0.0.0.0:<port>`. */
  echoServer(uid: number, alias: string, port: number): Promise<StartedTestContainer> {
    return this.app(
      uid,
      alias,
      ['node', 'examples/dist/echo/server.js', `tcp://0.0.0.0:${port}`],
      'echo server listening',
    );
  }

  /** An idle app container to run clients in with exec. */
  idle(uid: number, alias: string): Promise<StartedTestContainer> {
    return this.app(uid, alias, ['sleep', 'infinity']);
  }

  /** Removes every container, the network and the socket directory. */
  async stop(): Promise<void> {
    for (const c of this.#apps.reverse()) await c.stop({ timeout: 0 }).catch(() => {});
    await this.ferryd.stop({ timeout: 0 }).catch(() => {});
    await this.network.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
