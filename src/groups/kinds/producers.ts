/** conv2d and dense: producers of their output's channels, consumers of their input's. */
import { handler, type KindHandler } from './handler.ts';

export const conv2dHandler: KindHandler = handler({
  kind: 'conv2d',
  relation: () => 'produce',
  // kernel [kh, kw, cin, cout]
  axes: (n) => ({ in: [{ param: 'kernel', axis: 2 }], out: [{ param: 'kernel', axis: 3 }, ...(n.useBias ? [{ param: 'bias', axis: 0 }] : [])] }),
  mapsZeroToZero: () => true, // only asked of channel-wise ops; a zero filter gives zero (bias 0)
});

export const denseHandler: KindHandler = handler({
  kind: 'dense',
  relation: () => 'produce',
  // kernel [in, out]
  axes: (n) => ({ in: [{ param: 'kernel', axis: 0 }], out: [{ param: 'kernel', axis: 1 }, ...(n.useBias ? [{ param: 'bias', axis: 0 }] : [])] }),
  mapsZeroToZero: () => true,
});
