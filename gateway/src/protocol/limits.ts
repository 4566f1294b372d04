/**
 * Protocol limits. PostgreSQL caps the startup packet body at 10,000 bytes (MAX_STARTUP_PACKET_LENGTH
 * in src/include/libpq/pqcomm.h; ProcessStartupPacket subtracts the 4-byte length word first, so
 * the whole packet may be 10,004 bytes) and regular messages at 1 GiB (PQ_LARGE_MESSAGE_LIMIT);
 * pgward uses the same startup cap and a configurable, smaller message cap (limits.max_message_bytes).
 */
export const MAX_STARTUP_PACKET_BYTES = 10_000;
/** Smallest startup packet: length (4) + code (4). */
export const MIN_STARTUP_PACKET_BYTES = 8;
/** NAMEDATALEN - 1: PostgreSQL cuts the startup packet's user and database to this many bytes. */
export const MAX_STARTUP_NAME_BYTES = 63;
export const MAX_MESSAGE_BYTES_CEILING = 1 << 30;
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/**
 * Client messages before authentication completes (password, SASL): PostgreSQL reads them with a
 * limit of PG_MAX_AUTH_TOKEN_LENGTH (65,535) bytes; anything larger from a client nobody has
 * authenticated yet is refused before it is buffered.
 */
export const MAX_AUTH_MESSAGE_BYTES = 65_535 + 4;
/** Backend messages pgward inspects (not DataRow) must fit in this many bytes. */
export const MAX_INSPECTED_BACKEND_MESSAGE_BYTES = 1024 * 1024;
/** Protocol 3.2 allows cancel keys up to 256 bytes. */
export const MAX_CANCEL_KEY_BYTES = 256;
