// The Kafka Streams side of the window comparison (scenario 6 of bench/cmd/cdcdbench -suite):
// the same job as the cdcd window job it is measured against. It reads a cdcd change topic
// (Confluent-framed Avro, writer schemas fetched from the registry once per id), keeps ops c,
// takes event time from source.ts_ms, groups by after.a, and counts and sums after.id in
// tumbling windows of SIZE_MS with no grace, emitting one final result per window (suppress),
// exactly once (exactly_once_v2). Compiled and run by the harness:
//   java -cp <kafka-streams jars>:<dir> WindowBench BOOTSTRAP REGISTRY INPUT OUTPUT APP_ID SIZE_MS THREADS
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

public class WindowBench {
    static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    /** The fields the job needs from one change: op, source.ts_ms, after.a, after.id. */
    static final class Change {
        final String op; final long ts; final long a; final long id;
        Change(String op, long ts, long a, long id) { this.op = op; this.ts = ts; this.a = a; this.id = id; }
    }

    /** Decodes Confluent-framed Avro envelopes; writer schemas come from the registry by id. */
    static final class ChangeDeserializer implements Deserializer<Change> {
        private final String registry;
        private final HttpClient http = HttpClient.newHttpClient();
        private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new ConcurrentHashMap<>();
        private BinaryDecoder decoder;
        ChangeDeserializer(String registry) { this.registry = registry; }

        private GenericDatumReader<GenericRecord> reader(int id) {
            return readers.computeIfAbsent(id, k -> {
                try {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + k)).build(),
                        HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode() + ": " + r.body());
                    String schema = JSON.readTree(r.body()).get("schema").asText();
                    return new GenericDatumReader<>(new Schema.Parser().parse(schema));
                } catch (Exception e) {
                    throw new RuntimeException("fetching schema " + k + " from " + registry + ": " + e, e);
                }
            });
        }

        @Override public Change deserialize(String topic, byte[] data) {
            if (data == null) return null; // tombstone
            ByteBuffer b = ByteBuffer.wrap(data);
            if (b.get() != 0) throw new IllegalArgumentException("not Confluent-framed Avro");
            int id = b.getInt();
            try {
                decoder = DecoderFactory.get().binaryDecoder(data, 5, data.length - 5, decoder);
                GenericRecord env = reader(id).read(null, decoder);
                GenericRecord after = (GenericRecord) env.get("after");
                GenericRecord source = (GenericRecord) env.get("source");
                long a = after == null ? 0 : ((Number) after.get("a")).longValue();
                long rid = after == null ? 0 : ((Number) after.get("id")).longValue();
                return new Change(env.get("op").toString(), ((Number) source.get("ts_ms")).longValue(), a, rid);
            } catch (java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }
    }

    /** Event time: source.ts_ms. */
    public static final class SourceTime implements TimestampExtractor {
        @Override public long extract(ConsumerRecord<Object, Object> r, long partitionTime) {
            Object v = r.value();
            return v instanceof Change ? ((Change) v).ts : partitionTime;
        }
    }

    /** count and sum as two longs. */
    static final Serde<long[]> AGG = Serdes.serdeFrom(
        (Serializer<long[]>) (t, v) -> ByteBuffer.allocate(16).putLong(v[0]).putLong(v[1]).array(),
        (Deserializer<long[]>) (t, d) -> { ByteBuffer b = ByteBuffer.wrap(d); return new long[] {b.getLong(), b.getLong()}; });

    /** Changes as they cross the repartition topic: ts, a, id. */
    static final Serde<Change> REPART = Serdes.serdeFrom(
        (Serializer<Change>) (t, c) -> ByteBuffer.allocate(24).putLong(c.ts).putLong(c.a).putLong(c.id).array(),
        (Deserializer<Change>) (t, d) -> { ByteBuffer b = ByteBuffer.wrap(d); return new Change("c", b.getLong(), b.getLong(), b.getLong()); });

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], registry = args[1], input = args[2], output = args[3], appId = args[4];
        long sizeMs = Long.parseLong(args[5]);
        int threads = Integer.parseInt(args[6]);
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 64L << 20);
        p.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("java.io.tmpdir") + "/kstreams-" + appId);
        p.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, SourceTime.class);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        p.put(StreamsConfig.consumerPrefix("max.poll.records"), 10000);
        p.put(StreamsConfig.producerPrefix("linger.ms"), 5);
        p.put(StreamsConfig.producerPrefix("batch.size"), 1 << 20);

        Serde<Change> changes = Serdes.serdeFrom((t, c) -> { throw new UnsupportedOperationException(); }, new ChangeDeserializer(registry));
        StreamsBuilder sb = new StreamsBuilder();
        sb.stream(input, Consumed.with(Serdes.Bytes(), changes))
            .filter((k, c) -> c != null && c.op.equals("c"))
            .groupBy((k, c) -> Long.toString(c.a), Grouped.with(Serdes.String(), REPART))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ZERO))
            .aggregate(() -> new long[2], (k, c, agg) -> { agg[0]++; agg[1] += c.id; return agg; },
                Materialized.<String, long[], WindowStore<Bytes, byte[]>>as("agg").withKeySerde(Serdes.String()).withValueSerde(AGG))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
            .toStream()
            .map((w, agg) -> new org.apache.kafka.streams.KeyValue<>(w.key() + "@" + w.window().start(), agg[0] + "," + agg[1]))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
        KafkaStreams ks = new KafkaStreams(sb.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> { ks.close(Duration.ofSeconds(20)); done.countDown(); }));
        ks.setUncaughtExceptionHandler(e -> {
            System.err.println("WindowBench: " + e);
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        ks.start();
        System.err.println("WindowBench: started " + appId);
        done.await();
    }
}
