"""Reads a cdcd topic with confluent-kafka and its schema-registry AvroDeserializer, as a
Debezium user's Python consumer would, and prints one JSON line per record: the record's
op and its after row, each value in a canonical text form the Go test compares with what
PostgreSQL returns. Any decoding error ends the script with a non-zero status.

usage: consume.py BROKERS REGISTRY_URL TOPIC COUNT TIMEOUT_SECONDS
"""
import datetime
import decimal
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def canonical(v):
    """The value as JSON: text for scalars (floats by repr, bytes as hex), lists as lists."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, dict) and set(v) == {"scale", "value"}:  # io.debezium.data.VariableScaleDecimal
        unscaled = int.from_bytes(v["value"], "big", signed=True)
        return "%d|%d" % (unscaled, v["scale"])
    if isinstance(v, list):
        return [canonical(e) for e in v]
    return {"unexpected": type(v).__name__, "repr": repr(v)}


def main():
    brokers, registry, topic, count, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "cdcd-foreign-%s-%d" % (topic, time.time_ns()),
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue  # cdcd has not created the topic yet
                raise RuntimeError("consumer error: %s" % msg.error())
            if msg.value() is None:
                continue  # a tombstone
            value = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
            after = value["after"]
            row = None if after is None else {k: canonical(v) for k, v in after.items()}
            print(json.dumps({"op": value["op"], "after": row}), flush=True)
            seen += 1
    finally:
        consumer.close()
    if seen < count:
        sys.exit("read %d of %d records in %gs" % (seen, count, timeout))


if __name__ == "__main__":
    main()
