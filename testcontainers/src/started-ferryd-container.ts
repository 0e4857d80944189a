/** A running ferryd: where its socket is, the tokens of its namespaces, `ferry show`, `attach`. */
import {
  AbstractStartedContainer,
  type GenericContainer,
  type StartedTestContainer,
  type StopOptions,
  type StoppedTestContainer,
} from 'testcontainers';
import { addGroup, addVolumeMount } from './host-config.js';
import { ABSTRACT_SOCKET, SOCKET_DIR } from './paths.js';
import { removeVolume } from './volume.js';

export interface AttachOptions {
  /** The namespace the app attaches to (`FERRY_NAMESPACE`, and its token as `FERRY_TOKEN`). */
  namespace?: string;
  /**
   * `volume`: the app mounts ferryd's socket volume and joins ferryd's group (the socket is mode
   * 0660); it keeps its own network and IPC namespaces and its uid. `network`: the app joins
   * ferryd's network namespace and reaches `@ferry/session` (ferryd started withAbstractSocket()).
   * Default: whichever this ferryd was started for.
   */
  via?: 'volume' | 'network';
}

export interface FerrydDetails {
  socket: string;
  volume: string | null;
  tokens: ReadonlyMap<string, string | null>;
  gid: number;
}

export class StartedFerrydContainer extends AbstractStartedContainer {
  readonly #details: FerrydDetails;

  constructor(started: StartedTestContainer, details: FerrydDetails) {
    super(started);
    this.#details = details;
  }

  /** ferryd's control socket as apps name it: `/run/ferry/ferryd.sock`, or `@ferry/session`. */
  getSocketPath(): string {
    return this.#details.socket;
  }

  /** The named volume holding the socket (mount it at /run/ferry); null with the abstract socket. */
  getSocketVolume(): string | null {
    return this.#details.volume;
  }

  /** The group that may open the socket (apps are added to it by `attach`). */
  getSocketGroup(): number {
    return this.#details.gid;
  }

  /** The token of a namespace given with `withNamespace` (null when it is open). */
  getToken(namespace: string): string | null {
    const t = this.#details.tokens.get(namespace);
    if (t === undefined) throw new Error(`no namespace '${namespace}' was given with withNamespace()`);
    return t;
  }

  /** What an app needs to reach this ferryd: FERRY_SOCKET, and FERRY_NAMESPACE/FERRY_TOKEN. */
  getConnectionEnv(namespace?: string): Record<string, string> {
    const env: Record<string, string> = { FERRY_SOCKET: this.#details.socket };
    if (namespace !== undefined && namespace !== 'default') env['FERRY_NAMESPACE'] = namespace;
    if (namespace !== undefined && this.#details.tokens.has(namespace)) {
      const token = this.getToken(namespace);
      if (token !== null) env['FERRY_TOKEN'] = token;
    }
    return env;
  }

  /**
   * Sets up `app` (not started yet) to reach this ferryd, and returns it: the socket volume and
   * ferryd's group, or ferryd's network namespace; the socket, namespace and token in its
   * environment.
   */
  attach<T extends GenericContainer>(app: T, opts: AttachOptions = {}): T {
    const abstract = this.#details.socket === ABSTRACT_SOCKET;
    const via = opts.via ?? (abstract ? 'network' : 'volume');
    if (via === 'volume') {
      if (this.#details.volume === null) {
        throw new Error('this ferryd listens on the abstract socket: attach with via: "network"');
      }
      addVolumeMount(app, this.#details.volume, SOCKET_DIR);
      addGroup(app, this.#details.gid);
    } else {
      if (!abstract) {
        throw new Error('the network variant needs a ferryd started withAbstractSocket()');
      }
      app.withNetworkMode(`container:${this.getId()}`);
    }
    return app.withEnvironment(this.getConnectionEnv(opts.namespace));
  }

  /** `ferry show <topic> --json` in ferryd's container, parsed. */
  async show<T = unknown>(topic: string): Promise<T> {
    return JSON.parse(await this.#ferry(['show', topic, '--json'])) as T;
  }

  /** `ferry health`: resolves with its line when ferryd answers, rejects otherwise. */
  health(): Promise<string> {
    return this.#ferry(['health']).then((out) => out.trim());
  }

  async #ferry(args: string[]): Promise<string> {
    const r = await this.exec(['ferry', ...args]);
    if (r.exitCode !== 0) throw new Error(`ferry ${args.join(' ')} exited ${r.exitCode}: ${r.output.trim()}`);
    return r.stdout;
  }

  /**
   * Stops ferryd; once its container is removed, removes the socket volume too (which fails, with
   * the names of the containers, while apps still use it: stop them first).
   */
  override async stop(options?: Partial<StopOptions>): Promise<StoppedTestContainer> {
    const stopped = await super.stop(options);
    if (this.#details.volume !== null && options?.remove !== false) await removeVolume(this.#details.volume);
    return stopped;
  }
}
