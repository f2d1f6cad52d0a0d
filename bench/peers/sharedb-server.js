// ShareDB 7 over WebSocket: the collaborative-editing server the document benchmark
// (parley.bench.DocumentBench) measures Parley against. ShareDB keeps documents in its
// in-memory database with in-memory pub/sub: nothing is persisted, so it does less per
// operation than Parley, which journals every operation to Cassandra before acknowledging it.
//
// Protocol: ShareDB's own, one JSON object per WebSocket text frame (sharedb/lib/agent.js).
// Documents use ShareDB's built-in type json0; a text document is {"text": "..."} edited with
// json0's string insert (si) and delete (sd) at a UTF-16 offset, OT transformed by the server.
// Collection names and document ids are free-form strings; "c" is the collection, "d" the id.
//
//   on connect, server ← {"a":"init","protocol":1,"protocolMinor":2,"id":"<src>","type":"http://sharejs.org/types/JSONv0"}
//                        <src> names this connection in acknowledgements and broadcasts
//   subscribe   → {"a":"s","c":"docs","d":"d1"}
//               ← {"data":{"v":<version>,"data":{"text":"…"}},"a":"s","c":"docs","d":"d1"}
//                 (a document that does not exist yet: "data":{"v":0,"type":null})
//   create      → {"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":"json0","data":{"text":""}}}
//   edit        → {"a":"op","c":"docs","d":"d1","v":<version it is based on>,"seq":<n>,
//                  "op":[{"p":["text",<offset>],"si":"abc"}]}    (delete: {"p":["text",<offset>],"sd":"abc"})
//                 seq numbers this connection's submissions: from 1, increasing
//   ack         ← {"src":"<src>","seq":<n>,"v":<version it was applied at>,"a":"op","c":"docs","d":"d1"}
//                 no "op" field; the document's version is then v+1. An op based on an older
//                 version is transformed first, and the ops it was transformed against reach
//                 the submitter before its ack, as broadcasts.
//   broadcast   ← {"a":"op","c":"docs","d":"d1","v":<version>,"src":"<author>","seq":<n>,"op":[…]}
//                 to every subscriber but the author. The same op can arrive twice (once before
//                 an ack of yours, once as a broadcast): ignore an op whose v is below the
//                 version you already have, as ShareDB's own client does.
//   error       ← the request echoed with "error":{"code":"ERR_…","message":"…"}
//   keep-alive  → {"a":"pp"}   ← {"a":"pp"}
// A document's version counts its operations, the create included: after the create it is 1.
//
// Usage: node sharedb-server.js [port]   (default PEER_SHAREDB_PORT, else 18303; 127.0.0.1)
'use strict';

const { Duplex } = require('stream');
const { WebSocketServer } = require('ws');
const ShareDB = require('sharedb');

const port = Number(process.argv[2] || process.env.PEER_SHAREDB_PORT || 18303);
const backend = new ShareDB();
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

// ShareDB reads and writes a stream of JSON objects; this adapts a socket to one.
function objectStream(socket) {
  const stream = new Duplex({
    objectMode: true,
    read() {},
    write(message, encoding, done) {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      done();
    },
  });
  socket.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch (e) {
      socket.close(1007, 'not JSON');
      return;
    }
    stream.push(message);
  });
  socket.on('close', () => {
    stream.push(null);
    stream.destroy();
  });
  return stream;
}

server.on('connection', (socket) => backend.listen(objectStream(socket)));
server.on('listening', () => console.log(`sharedb peer listening on 127.0.0.1:${port} (pid ${process.pid})`));
