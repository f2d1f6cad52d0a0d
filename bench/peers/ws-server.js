// Bare WebSocket broadcast server on npm `ws` 8: the ceiling the load tool (parley.bench)
// measures Parley and Socket.IO against. It stores nothing and checks nothing; per message it
// does the least a broadcast needs: find the room, write one pre-encoded frame to each member.
//
// Protocol (text frames, fields separated by "|"), spoken by parley.bench.WsLink:
//   client → j|<id>|<room>          join <room>; answered a|<id>
//   client → p|<id>|<room>|<body>   publish; answered a|<id>, and m|<room>|<body> goes to every
//                                   member of <room>, the publisher included
//
// Usage: node --expose-gc ws-server.js [port]   (default PEER_WS_PORT, else 18302; 127.0.0.1)
// SIGUSR2 runs a full garbage collection, so the load tool reads memory after collection here
// as it does for a JVM (jcmd GC.run).
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || process.env.PEER_WS_PORT || 18302);
const rooms = new Map(); // room name → Set of sockets

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  // The rooms are the only registry needed; ws's own client set would cost memory per socket.
  clientTracking: false,
});

server.on('connection', (socket) => {
  const joined = new Set();
  socket.on('message', (data) => {
    const text = data.toString();
    const idEnd = text.indexOf('|', 2);
    const id = text.slice(2, idEnd);
    if (text.startsWith('j|')) {
      const room = text.slice(idEnd + 1);
      if (!rooms.has(room)) rooms.set(room, new Set());
      rooms.get(room).add(socket);
      joined.add(room);
      socket.send('a|' + id);
    } else if (text.startsWith('p|')) {
      const roomEnd = text.indexOf('|', idEnd + 1);
      const room = text.slice(idEnd + 1, roomEnd);
      // Encoded once, sent as a text frame to every member.
      const frame = Buffer.from('m|' + text.slice(idEnd + 1));
      for (const member of rooms.get(room) || []) member.send(frame, { binary: false });
      socket.send('a|' + id);
    }
  });
  socket.on('close', () => {
    for (const room of joined) {
      const members = rooms.get(room);
      members.delete(socket);
      if (members.size === 0) rooms.delete(room);
    }
  });
});

process.on('SIGUSR2', () => {
  if (global.gc) global.gc();
});

server.on('listening', () => console.log(`ws peer listening on 127.0.0.1:${port} (pid ${process.pid})`));
