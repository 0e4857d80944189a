/**
 * Cut-through: two local apps joined by a fifo pair in a segment they share; ferryd never touches
 * the bytes. It serves every scheme: a connect (stream or datagram) that the rules route to a local
 * listener whose transport admits it is joined here instead of going through the scheme's
 * transport. Its listener is the listener-table entry itself (no kernel side); its accept is the
 * `accepted` event to the listening app, sent with the connect's reply.
 */
import type { RingWhen } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener } from '../app/listener-table.js';
import type { Session } from '../session/session.js';
import { acceptedEvent } from '../session/wire.js';
import type { TransportHost } from './transport.js';

export interface Join {
  client: App;
  server: App;
  listener: Listener;
  /** The addresses each side sees as its own. */
  clientUri: string;
  serverUri: string;
  /** The client's fifo sizes (bytes, rounded). */
  tx: number;
  rx: number;
  /** When the listening app's wake pipe rings for `accepted` (see App.send). */
  ring: RingWhen;
}

export class CutThrough {
  readonly #host: TransportHost;

  constructor(host: TransportHost) {
    this.#host = host;
  }

  /** Joins the client to the listener's app: the server side hears `accepted`; returns the client's session. */
  join(j: Join): Session {
    const host = this.#host;
    const { c, s } = host.pairApps(j.client, j.server, j.tx, j.rx, j.clientUri, j.serverUri, j.listener.id);
    j.listener.accepted++;
    j.server.send(acceptedEvent(j.listener.id, { session: s, fifos: host.fifoRef(s), fds: [] }), [], j.ring);
    return c;
  }
}
