/* SPDX-License-Identifier: MIT */
/*
 * RFC 6455 for the relay's server side: the handshake's accept key, server
 * frame headers, and an incremental parser of client frames that assembles
 * messages (fragmented, masked) and checks every rule a server must enforce.
 * No I/O; the only allocation is the message buffer, never above max_message.
 */
#ifndef WRITEVV_RELAY_WS_H
#define WRITEVV_RELAY_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_NO_STATUS 1005
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

#define WS_MAX_HEADER 10 /* a server frame header: no mask */

/* The Sec-WebSocket-Accept value for a client key; -1 if the key is not the
 * base64 of 16 bytes (RFC 6455 4.2.1). out gets 28 chars and a NUL. */
int ws_accept_key(const char *key, char out[29]);

/* A server (unmasked) frame header for a payload of len bytes. */
size_t ws_frame_header(unsigned char out[WS_MAX_HEADER], int opcode, bool fin, uint64_t len);

bool ws_utf8_valid(const unsigned char *s, size_t len);
bool ws_close_code_valid(unsigned code);

enum ws_event_kind {
	WS_EV_MORE,    /* all input consumed, no event yet */
	WS_EV_TEXT,    /* a complete text message: data, len (valid UTF-8) */
	WS_EV_BINARY,  /* a complete binary message */
	WS_EV_PING,    /* data, len: the payload to echo in a pong */
	WS_EV_PONG,
	WS_EV_CLOSE,   /* code (WS_CLOSE_NO_STATUS if none), data/len: the reason */
	WS_EV_ERROR,   /* code: the close code to answer with */
};

struct ws_event {
	enum ws_event_kind kind;
	const unsigned char *data;
	size_t len;
	unsigned code;
};

struct ws_parser {
	size_t max_message;     /* bound of a (reassembled) message */
	bool failed;
	/* the frame being read */
	unsigned char hdr[14];
	unsigned hdr_len;
	bool in_payload;
	bool fin;
	int opcode;
	unsigned char mask[4];
	uint64_t payload_len, payload_done;
	/* the control frame being read */
	unsigned char ctl[125];
	/* the data message being reassembled */
	int msg_opcode;         /* 0: none in progress */
	bool msg_compressed;    /* RSV1 on its first frame (permessage-deflate) */
	unsigned char *msg;
	size_t msg_len, msg_cap;
	/* permessage-deflate (RFC 7692), client_no_context_takeover */
	void *inflater;         /* z_stream, NULL unless negotiated */
	unsigned char *plain;   /* the inflated message, up to max_message */
	size_t plain_cap;
};

void ws_parser_init(struct ws_parser *p, size_t max_message);
/* permessage-deflate was negotiated: RSV1 marks compressed messages. -1: no memory. */
int ws_parser_enable_deflate(struct ws_parser *p);
/*
 * permessage-deflate for server messages with server_no_context_takeover:
 * compress in[0..len) on its own (raw deflate, the final 00 00 ff ff
 * removed, RFC 7692 7.2.1) into a malloc'd buffer.  Returns its length, or
 * -1.  One stream is kept per process and reset for every message.
 */
long ws_deflate_message(const unsigned char *in, size_t len, unsigned char **out);
void ws_deflate_cleanup(void);
void ws_parser_free(struct ws_parser *p);
/*
 * Consume in[0..len) up to the next event; *used says how much.  Event data
 * points into the parser and stays valid until the next call.  After
 * WS_EV_ERROR or WS_EV_CLOSE the parser returns WS_EV_ERROR forever.
 */
void ws_parse(struct ws_parser *p, const unsigned char *in, size_t len, size_t *used,
	      struct ws_event *ev);

#endif
