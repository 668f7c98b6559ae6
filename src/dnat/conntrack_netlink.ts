/**
 * One TCP connection looked up in conntrack by its tuple over ctnetlink: the
 * request the kernel answers and the answer read back. A lookup by tuple is a
 * hash probe, where `conntrack -L` with filters walks the whole table in a
 * process of its own; the service asks once per ending session. Pure bytes:
 * the socket is platform/conntrack_socket.ts's.
 * @module
 */

import type { FlowCounters, TrackedConnection } from "./conntrack_text.ts";
import type { TcpTuple } from "./conntrack.ts";
import { concat } from "../ssh/wire.ts";

const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
/** (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, and the IPCTNL_MSG_CT_NEW it is answered by. */
const CT_GET = 0x0101;
const CT_NEW = 0x0100;
const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_TCP = 6;

// include/uapi/linux/netfilter/nfnetlink_conntrack.h
const CTA_TUPLE_ORIG = 1;
const CTA_PROTOINFO = 4;
const CTA_COUNTERS_ORIG = 9;
const CTA_COUNTERS_REPLY = 10;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_STATE = 1;
const CTA_COUNTERS_PACKETS = 1;
const CTA_COUNTERS_BYTES = 2;

/** enum tcp_conntrack, in conntrack -L's words. */
const TCP_STATES = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
];

/** ENOENT as ctnetlink answers it: conntrack does not know the connection. */
const ENOENT = 2;

function attribute(type: number, payload: Uint8Array): Uint8Array {
  const length = 4 + payload.length;
  const out = new Uint8Array((length + 3) & ~3);
  const view = new DataView(out.buffer);
  view.setUint16(0, length, true);
  view.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

function nested(type: number, ...children: Uint8Array[]): Uint8Array {
  return attribute(type | NLA_F_NESTED, concat(children));
}

function port(value: number): Uint8Array {
  return new Uint8Array([value >> 8, value & 0xff]);
}

/** The GET request for the connection from `t.client` to `t.proxy` (its original direction). */
export function connectionRequest(t: TcpTuple, seq: number): Uint8Array<ArrayBuffer> {
  const v6 = t.client.ip.family === 6;
  const tuple = nested(
    CTA_TUPLE_ORIG,
    nested(
      CTA_TUPLE_IP,
      attribute(v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, Uint8Array.from(t.client.ip.bytes)),
      attribute(v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, Uint8Array.from(t.proxy.ip.bytes)),
    ),
    nested(
      CTA_TUPLE_PROTO,
      attribute(CTA_PROTO_NUM, new Uint8Array([IPPROTO_TCP])),
      attribute(CTA_PROTO_SRC_PORT, port(t.client.port)),
      attribute(CTA_PROTO_DST_PORT, port(t.proxy.port)),
    ),
  );
  const length = NLMSG_HDRLEN + NFGENMSG_LEN + tuple.length;
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, CT_GET, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, seq, true);
  // nfgenmsg: family, NFNETLINK_V0, res_id 0.
  out[NLMSG_HDRLEN] = v6 ? AF_INET6 : AF_INET;
  out.set(tuple, NLMSG_HDRLEN + NFGENMSG_LEN);
  return out;
}

/** Attributes of `bytes[from, to)`, by type (the first of each). */
function attributes(bytes: Uint8Array, from: number, to: number): Map<number, Uint8Array> {
  const found = new Map<number, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = from;
  while (at + 4 <= to) {
    const length = view.getUint16(at, true);
    if (length < 4 || at + length > to) throw new Error("ctnetlink answer has a broken attribute");
    const type = view.getUint16(at + 2, true) & NLA_TYPE_MASK;
    if (!found.has(type)) found.set(type, bytes.subarray(at + 4, at + length));
    at += (length + 3) & ~3;
  }
  return found;
}

function children(payload: Uint8Array | undefined): Map<number, Uint8Array> {
  return payload ? attributes(payload, 0, payload.length) : new Map();
}

function bigEndian(bytes: Uint8Array | undefined): number | undefined {
  if (!bytes || bytes.length === 0 || bytes.length > 8) return undefined;
  let value = 0;
  for (const b of bytes) value = value * 256 + b;
  return value;
}

function counters(payload: Uint8Array | undefined): FlowCounters | undefined {
  const c = children(payload);
  const packets = bigEndian(c.get(CTA_COUNTERS_PACKETS));
  const bytes = bigEndian(c.get(CTA_COUNTERS_BYTES));
  return packets !== undefined && bytes !== undefined ? { packets, bytes } : undefined;
}

/** What the kernel answered to one lookup: the connection, or none it knows (or counts). */
export interface ConnectionAnswer {
  readonly connection: TrackedConnection | undefined;
}

/**
 * The answer to request `seq` in one datagram read from the socket; undefined when the datagram
 * holds none (an answer to an earlier request, say). The connection is undefined when conntrack
 * does not know it, or counts nothing for it (accounting off).
 * @throws {Error} on any other error the kernel answered, or bytes that are not an answer
 */
export function answerTo(datagram: Uint8Array, seq: number): ConnectionAnswer | undefined {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  for (let at = 0; at + NLMSG_HDRLEN <= datagram.length;) {
    const length = view.getUint32(at, true);
    if (length < NLMSG_HDRLEN || at + length > datagram.length) {
      throw new Error("ctnetlink answer is cut short");
    }
    const type = view.getUint16(at + 4, true);
    if (view.getUint32(at + 8, true) === seq) {
      if (type === NLMSG_ERROR) {
        const error = -view.getInt32(at + NLMSG_HDRLEN, true);
        if (error === ENOENT) return { connection: undefined };
        throw new Error(`ctnetlink lookup failed: errno ${error}`);
      }
      if (type === CT_NEW) {
        return {
          connection: connectionOf(datagram, at + NLMSG_HDRLEN + NFGENMSG_LEN, at + length),
        };
      }
    }
    at += (length + 3) & ~3;
  }
  return undefined;
}

function connectionOf(bytes: Uint8Array, from: number, to: number): TrackedConnection | undefined {
  const top = attributes(bytes, from, to);
  const original = counters(top.get(CTA_COUNTERS_ORIG));
  const reply = counters(top.get(CTA_COUNTERS_REPLY));
  if (!original || !reply) return undefined;
  const tcp = children(children(top.get(CTA_PROTOINFO)).get(CTA_PROTOINFO_TCP));
  const code = tcp.get(CTA_PROTOINFO_TCP_STATE)?.[0];
  const state = code === undefined ? "" : TCP_STATES[code] ?? `state ${code}`;
  return { state, original, reply };
}
