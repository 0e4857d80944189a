/**
 * ferryd in a container, for tests (the way @testcontainers/postgresql serves database tests):
 *
 *   const ferryd = await new FerrydContainer().withNamespace('web').start();
 *   const app = await ferryd.attach(new GenericContainer('my/app'), { namespace: 'web' }).start();
 *
 * By default ferryd's socket directory is a named volume created for this container, which apps
 * mount (`attach`, volume variant). `withAbstractSocket()` makes ferryd listen on the abstract
 * socket `@ferry/session` instead, reached by apps that join its network namespace (`attach`,
 * network variant; no volume, as in a Kubernetes pod with a ferryd sidecar).
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GenericContainer,
  getContainerRuntimeClient,
  getReaper,
  LABEL_TESTCONTAINERS_SESSION_ID,
  type StartedTestContainer,
  Wait,
} from 'testcontainers';
import {
  configDocument,
  type FerrydConfig,
  type NamespaceOptions,
  type NamespaceSpec,
  namespaceSpec,
  tokenFile,
} from './config.js';
import { addVolumeMount, useInit } from './host-config.js';
import { ABSTRACT_SOCKET, CONFIG_PATH, defaultFerrydImage, SOCKET_DIR, SOCKET_PATH } from './paths.js';
import { StartedFerrydContainer } from './started-ferryd-container.js';
import { removeVolume } from './volume.js';

export class FerrydContainer extends GenericContainer {
  #config: FerrydConfig = {};
  readonly #namespaces = new Map<string, NamespaceSpec>();
  #abstract = false;
  #userLogConsumer: ((stream: Readable) => unknown) | undefined;
  #log = '';
  #logEnded: Promise<void> = Promise.resolve();

  /** `image` defaults to `$FERRYD_IMAGE`, else `ferry/ferryd:local` (what `npm run images` builds). */
  constructor(image: string = defaultFerrydImage()) {
    super(image);
    useInit(this);
    this.withWaitStrategy(Wait.forLogMessage('ferryd: listening on')).withStartupTimeout(30_000);
    // ferryd's output is kept (the last 8 KiB) for the error of a start that fails.
    super.withLogConsumer((stream) => {
      this.#logEnded = new Promise((resolve) => {
        stream.on('end', resolve);
        stream.on('error', () => resolve());
      });
      stream.on('data', (d: Buffer | string) => {
        this.#log = (this.#log + String(d)).slice(-8192);
      });
      this.#userLogConsumer?.(stream);
    });
  }

  override withLogConsumer(logConsumer: (stream: Readable) => unknown): this {
    this.#userLogConsumer = logConsumer;
    return this;
  }

  /**
   * ferryd's configuration (docs/configuration.md), written to a file ferryd is started with;
   * called again, it adds to (and overrides keys of) what was given before. ferryd validates it:
   * a bad one makes `start()` fail with ferryd's message.
   */
  withConfig(config: FerrydConfig): this {
    this.#config = { ...this.#config, ...config };
    return this;
  }

  /**
   * A namespace that apps attach to with its token (a random one unless `token` is given;
   * `token: null` leaves it open). ferryd reads the token from a file in its container.
   */
  withNamespace(name: string, opts: NamespaceOptions = {}): this {
    this.#namespaces.set(name, namespaceSpec(name, opts));
    return this;
  }

  /** Listen on the abstract socket `@ferry/session` (apps join ferryd's network namespace). */
  withAbstractSocket(): this {
    this.#abstract = true;
    return this;
  }

  override async start(): Promise<StartedFerrydContainer> {
    const doc = configDocument(this.#config, this.#namespaces);
    if (doc !== null) {
      this.withCopyContentToContainer([{ content: doc, target: CONFIG_PATH, mode: 0o444 }]);
      for (const [name, ns] of this.#namespaces) {
        // Readable by ferryd's user; nothing else runs in this container.
        if (ns.token !== null)
          this.withCopyContentToContainer([{ content: ns.token, target: tokenFile(name), mode: 0o444 }]);
      }
      this.withEnvironment({ FERRY_CONFIG: CONFIG_PATH });
    }
    const tokens = new Map([...this.#namespaces].map(([name, ns]) => [name, ns.token]));
    const volume = this.#abstract ? null : await createSocketVolume();
    if (volume === null) {
      this.withEnvironment({ FERRY_SOCKET: ABSTRACT_SOCKET });
    } else {
      addVolumeMount(this, volume, SOCKET_DIR);
      this.withEnvironment({ FERRY_SOCKET: SOCKET_PATH });
    }
    try {
      const started = await this.#startOrExplain();
      // The socket's group (mode 0660): apps are added to it.
      const gid = Number((await started.exec(['id', '-g'])).stdout.trim());
      const socket = volume === null ? ABSTRACT_SOCKET : SOCKET_PATH;
      return new StartedFerrydContainer(started, { socket, volume, tokens, gid });
    } catch (err) {
      if (volume !== null) await removeVolume(volume).catch(() => {});
      throw err;
    }
  }

  /** super.start(); when ferryd does not come up, the error carries what it printed. */
  async #startOrExplain(): Promise<StartedTestContainer> {
    try {
      return await super.start();
    } catch (err) {
      // The wait strategy may give up before the log stream has delivered ferryd's last words.
      await Promise.race([this.#logEnded, sleep(2000)]);
      const said = this.#log.trim();
      if (!said) throw err;
      throw new Error(`ferryd did not start (${(err as Error).message}); its output:\n${said}`, {
        cause: err,
      });
    }
  }
}

/**
 * A named volume for the socket directory, labelled like testcontainers' own resources (so its
 * reaper removes it with the session's containers when it runs). An empty volume mounted at
 * /run/ferry first by ferryd's container takes that directory's owner and mode from the image.
 */
async function createSocketVolume(): Promise<string> {
  const client = await getContainerRuntimeClient();
  const reaper = await getReaper(client);
  const name = `ferry-run-${randomBytes(6).toString('hex')}`;
  await client.container.dockerode.createVolume({
    Name: name,
    Labels: { 'org.testcontainers': 'true', [LABEL_TESTCONTAINERS_SESSION_ID]: reaper.sessionId },
  });
  return name;
}
