package parley.serialization;

/**
 * Marker for every message and event that crosses nodes or is written to the journal. Bound
 * once to Jackson CBOR in conf/serialization.conf; Java serialization is off.
 */
public interface CborSerializable {}
