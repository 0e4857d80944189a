/** @ferry/sdk/http: node:http agents, undici connectors and net.Sockets carried by Ferry. */
export { FerryAgent, type FerryAgentOptions, FerryHttpsAgent, type FerryHttpsAgentOptions } from './agent.js';
export { ferryListenerOf, listenThroughFerry } from './listen.js';
export { connectThroughFerry, FerryNetSocket, innerSocket, isFerryNetSocket } from './net-socket.js';
export {
  type Connector,
  type ConnectorOptions,
  createFerryDispatcher,
  type FerryConnectorOptions,
  type FerryDispatcherOptions,
  ferryConnector,
} from './undici.js';
