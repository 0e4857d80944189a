/**
 * A sidecar group on @ferry/testcontainers: one ferryd container and app containers that share
 * only the named volume holding ferryd's socket (mounted at /run/ferry by `attach`). Each app has
 * its own network (a network of the group, for plain TCP between apps) and IPC namespace and
 * runs as its own uid in ferryd's group (the socket is mode 0660).
 */
import { FerrydContainer, type StartedFerrydContainer } from '@ferry/testcontainers';
import { Network, type StartedNetwork, type StartedTestContainer, Wait } from 'testcontainers';
import { InitContainer } from './containers.js';
import { ensureImages, IMAGES } from './images.js';

export class SidecarGroup {
  readonly network: StartedNetwork;
  readonly ferryd: StartedFerrydContainer;
  readonly #apps: StartedTestContainer[] = [];

  private constructor(network: StartedNetwork, ferryd: StartedFerrydContainer) {
    this.network = network;
    this.ferryd = ferryd;
  }

  static async start(): Promise<SidecarGroup> {
    await ensureImages();
    const network = await new Network().start();
    try {
      const ferryd = await new FerrydContainer(IMAGES.ferryd).withNetworkMode('none').start();
      return new SidecarGroup(network, ferryd);
    } catch (err) {
      await network.stop().catch(() => {});
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
      .withCommand(command)
      .withStartupTimeout(30_000);
    if (waitFor) c = c.withWaitStrategy(Wait.forLogMessage(waitFor));
    const started = await this.ferryd.attach(c).start();
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

  /** Removes every container, the socket volume and the network. */
  async stop(): Promise<void> {
    for (const c of this.#apps.reverse()) await c.stop({ timeout: 0 }).catch(() => {});
    await this.ferryd.stop({ timeout: 0 }).catch(() => {});
    await this.network.stop().catch(() => {});
  }
}
