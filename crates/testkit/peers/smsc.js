#!/usr/bin/env node
// A local SMSC for the tests, built on the npm `smpp` package (0.5.1): daman's SmppSender binds
// to it and submits messages as it would to an operator's SMSC.
// Usage: node smsc.js PORT OUTFILE
//   - accepts bind_transceiver / bind_transmitter (any credentials; system_id is logged)
//   - answers enquire_link and unbind
//   - for every submit_sm appends one JSON line to OUTFILE:
//       {"system_id":..,"source_addr":..,"destination_addr":..,"data_coding":..,"short_message":"<decoded text>","message_id":..}
//   - prints "ready" on stdout once listening on 127.0.0.1:PORT
//   - test hooks: bind password "reject" -> ESME_RBINDFAIL; destination ending in "99" -> ESME_RINVDSTADR
'use strict';
const fs = require('fs');
const path = require('path');
// `smpp` from this directory's node_modules (`npm ci` here; scripts/test does it).
const smpp = require(path.join(__dirname, 'node_modules', 'smpp'));

const port = parseInt(process.argv[2], 10);
const outFile = process.argv[3];
if (!port || !outFile) {
  console.error('usage: node smsc.js PORT OUTFILE');
  process.exit(2);
}

let nextId = 1;

// short_message is decoded by the library according to data_coding:
// 0x00 -> GSM 03.38 (unpacked, one septet per byte), 0x01 -> ASCII/GSM, 0x03 -> LATIN1, 0x08 -> UCS2 (UTF-16BE).
// With the UDHI bit set it is {udh: [...], message: '...'}; a raw Buffer if the coding is unknown.
function messageText(pdu) {
  let sm = pdu.short_message;
  // message_payload TLV (long messages) takes precedence when short_message is empty
  if ((!sm || (sm.message !== undefined && sm.message.length === 0) || (Buffer.isBuffer(sm) && sm.length === 0)) && pdu.message_payload) {
    sm = pdu.message_payload;
  }
  if (sm === undefined || sm === null) return '';
  if (typeof sm === 'string') return sm;
  if (Buffer.isBuffer(sm)) return sm.toString('hex');
  const m = sm.message;
  if (typeof m === 'string') return m;
  if (Buffer.isBuffer(m)) return m.toString('hex');
  return String(m);
}

const server = smpp.createServer(function (session) {
  let systemId = null;
  const bind = function (pdu) {
    // test hook: password "reject" -> ESME_RBINDFAIL (0x0D)
    if (pdu.password === 'reject') {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    systemId = pdu.system_id;
    session.send(pdu.response());
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('enquire_link', function (pdu) {
    session.send(pdu.response());
  });
  session.on('unbind', function (pdu) {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', function (pdu) {
    // test hook: destination ending in "99" -> ESME_RINVDSTADR (0x0B), nothing recorded
    if (/99$/.test(pdu.destination_addr)) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      return;
    }
    const messageId = String(nextId++);
    const rec = {
      system_id: systemId,
      source_addr: pdu.source_addr,
      destination_addr: pdu.destination_addr,
      data_coding: pdu.data_coding,
      short_message: messageText(pdu),
      message_id: messageId,
    };
    fs.appendFileSync(outFile, JSON.stringify(rec) + '\n');
    session.send(pdu.response({ message_id: messageId }));
  });
  session.on('error', function (err) {
    console.error('session error:', err && err.message);
  });
});

server.on('error', function (err) {
  console.error('server error:', err && err.message);
  process.exit(1);
});

server.listen(port, '127.0.0.1', function () {
  console.log('ready');
});

function shutdown() { server.close(); process.exit(0); }
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
