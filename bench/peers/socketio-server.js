// Socket.IO 4.8 room broadcast server: the mainstream realtime stack the load tool
// (parley.bench) measures Parley against. Messages are broadcast to a room and acknowledged;
// nothing is stored, so it does less per message than Parley, which journals every message to
// Cassandra before acknowledging and pushing it.
//
// Protocol: Socket.IO v5 over Engine.IO v4, WebSocket transport only (no long-polling
// upgrade dance), spoken by parley.bench.SocketIoLink:
//   emit("join", room, ack)        join <room>; ack() once joined
//   emit("msg", room, body, ack)   broadcast ("msg", room, body) to every member of <room>,
//                                  the sender included (as Parley does), then ack()
//
// Usage: node --expose-gc socketio-server.js [port]   (default PEER_SOCKETIO_PORT, else 18301;
// 127.0.0.1). SIGUSR2 runs a full garbage collection, so the load tool reads memory after
// collection here as it does for a JVM (jcmd GC.run).
'use strict';

const { createServer } = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || process.env.PEER_SOCKETIO_PORT || 18301);
const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
});

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('msg', (room, body, ack) => {
    io.to(room).emit('msg', room, body);
    if (typeof ack === 'function') ack();
  });
});

process.on('SIGUSR2', () => {
  if (global.gc) global.gc();
});

httpServer.listen(port, '127.0.0.1', () =>
  console.log(`socket.io peer listening on 127.0.0.1:${port} (pid ${process.pid})`));
