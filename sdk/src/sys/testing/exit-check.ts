// Child process for sys/ tests: wakes once through a poller or doorbell, lets go, and must then exit
// on its own (nothing else keeps its loop alive). Prints 'woke' when the wake arrived.

import { Doorbell, ring } from '../doorbell.js';
import { close, eventfd, eventfdRead, eventfdWrite } from '../fd.js';
import { FdPoller } from '../poller.js';

const mode = process.argv[2];
switch (mode) {
  case 'poller-close':
  case 'poller-unwatch': {
    const poller = new FdPoller();
    const efd = eventfd(0, { nonblock: true });
    poller.watch(efd, { readable: true }, () => {
      eventfdRead(efd);
      process.stdout.write('woke\n');
      if (mode === 'poller-close') poller.close();
      else poller.unwatch(efd);
      close(efd);
    });
    setTimeout(() => eventfdWrite(efd), 20);
    break;
  }
  case 'doorbell-close': {
    const bell = Doorbell.create();
    bell.onRing(() => {
      process.stdout.write('woke\n');
      bell.close();
    });
    setTimeout(() => ring(bell.ringFd), 20);
    break;
  }
  case 'doorbell-unref': {
    // Never rung and never closed: unref alone must let the process exit.
    Doorbell.create({ unref: true });
    process.stdout.write('woke\n');
    break;
  }
  default:
    process.exit(2);
}
