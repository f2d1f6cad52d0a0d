package parley.collab.ot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

class OtClientTest {

    private static TextOperation op(Object... wire) {
        return TextOperation.fromWire(Arrays.asList(wire));
    }

    @Test
    void sendsAnEditAtOnceWhenSynchronized() {
        OtClient.Outgoing out = OtClient.synced().applyClient(op("a"));
        assertEquals(new OtClient.AwaitingConfirm(op("a")), out.state());
        assertEquals(Optional.of(op("a")), out.send());
    }

    @Test
    void buffersEditsWhileOneIsInFlightAndSendsThemTogetherOnAck() {
        OtClient state = OtClient.synced().applyClient(op("a")).state();
        OtClient.Outgoing second = state.applyClient(op(1, "b"));
        OtClient.Outgoing third = second.state().applyClient(op(2, "c"));
        assertEquals(Optional.empty(), second.send());
        assertEquals(Optional.empty(), third.send());
        assertEquals(new OtClient.AwaitingWithBuffer(op("a"), op(1, "bc")), third.state());

        OtClient.Outgoing acked = third.state().serverAck();
        assertEquals(Optional.of(op(1, "bc")), acked.send());
        assertEquals(new OtClient.AwaitingConfirm(op(1, "bc")), acked.state());
        assertEquals(OtClient.synced(), acked.state().serverAck().state());
    }

    @Test
    void appliesAServerOperationAsIsWhenSynchronized() {
        OtClient.Incoming in = OtClient.synced().applyServer(op(2, "x"));
        assertEquals(OtClient.synced(), in.state());
        assertEquals(op(2, "x"), in.apply());
    }

    @Test
    void transformsAServerOperationPastPendingEditsAndThePendingEditsPastIt() {
        // Server text "ab"; this client sent "ab" -> "abX" and then typed "abX" -> "QabX".
        OtClient state = OtClient.synced().applyClient(op(2, "X")).state().applyClient(op("Q", 3)).state();
        // Meanwhile someone else turned "ab" into "aZb".
        OtClient.Incoming in = state.applyServer(op(1, "Z", 1));
        assertEquals("QaZbX", in.apply().apply("QabX"));
        assertEquals(new OtClient.AwaitingWithBuffer(op(3, "X"), op("Q", 4)), in.state());
    }

    @Test
    void refusesAnAckWhenNothingIsInFlight() {
        assertThrows(IllegalStateException.class, () -> OtClient.synced().serverAck());
    }

    @Test
    void namesTheOperationToResendAfterAReconnect() {
        OtClient state = OtClient.synced().applyClient(op("a")).state().applyClient(op(1, "b")).state();
        assertEquals(Optional.of(op("a")), state.inFlight());
        assertEquals(Optional.empty(), OtClient.synced().inFlight());
    }

    @Test
    void twoClientsTypingAtTheSameSpotConverge() {
        Simulation sim = new Simulation(2, new Random(1));
        sim.clients.get(0).edit(op("left"));
        sim.clients.get(1).edit(op("right"));
        sim.serverProcesses(1);
        sim.serverProcesses(0);
        sim.drain();
        assertEquals("leftright", sim.server.text);
        sim.assertConverged();
    }

    /**
     * Three clients edit at random while the network delivers messages in a random
     * interleaving (in order per connection) and connections drop, losing whatever was in
     * flight; in the end everyone holds the server's text.
     */
    @Property
    void clientsConvergeUnderAnyInterleavingAndReconnects(
            @ForAll @Size(max = 80) List<@IntRange(min = 0, max = 3 * 7 - 1) Integer> actions,
            @ForAll long seed) {
        Random random = new Random(seed);
        Simulation sim = new Simulation(3, random);
        for (int action : actions) {
            Simulation.Client client = sim.clients.get(action % 3);
            switch (action / 3) {
                case 0, 1 -> client.edit(RandomEdits.operationOn(client.text, random));
                case 2, 3 -> sim.serverProcesses(client.id);
                case 4, 5 -> client.receive();
                default -> sim.reconnect(client.id);
            }
        }
        sim.drain();
        sim.assertConverged();
    }

    /** A server that orders operations, as the DocumentEntity does, and its clients. */
    private static final class Simulation {
        record Applied(int author, TextOperation operation) {}

        record Sent(int revision, TextOperation operation) {}

        /** What the server tells a client: its own operation was applied, or someone else's. */
        record Pushed(boolean ack, TextOperation operation) {}

        final Server server = new Server();
        final List<Client> clients = new ArrayList<>();
        final List<Deque<Sent>> toServer = new ArrayList<>();
        final Random random;

        Simulation(int clientCount, Random random) {
            this.random = random;
            for (int i = 0; i < clientCount; i++) {
                clients.add(new Client(i));
                toServer.add(new ArrayDeque<>());
            }
        }

        void serverProcesses(int from) {
            Sent sent = toServer.get(from).poll();
            if (sent == null) {
                return;
            }
            TextOperation applied = server.receive(from, sent.revision(), sent.operation());
            for (Client client : clients) {
                client.inbox.add(new Pushed(client.id == from, applied));
            }
        }

        /** The connection drops: some of what it carried arrives, the rest is lost. */
        void reconnect(int id) {
            Deque<Sent> outbound = toServer.get(id);
            int arriving = random.nextInt(outbound.size() + 1);
            for (int i = 0; i < arriving; i++) {
                serverProcesses(id);
            }
            outbound.clear();
            clients.get(id).inbox.clear();
            clients.get(id).catchUp();
        }

        void drain() {
            boolean moved = true;
            while (moved) {
                moved = false;
                for (Client client : clients) {
                    while (!toServer.get(client.id).isEmpty()) {
                        serverProcesses(client.id);
                        moved = true;
                    }
                    while (!client.inbox.isEmpty()) {
                        client.receive();
                        moved = true;
                    }
                }
            }
        }

        void assertConverged() {
            for (Client client : clients) {
                assertEquals(server.text, client.text, "text of client " + client.id);
                assertEquals(server.history.size(), client.revision, "revision of client " + client.id);
                assertInstanceOf(OtClient.Synchronized.class, client.state);
            }
        }

        final class Server {
            String text = "";
            final List<Applied> history = new ArrayList<>();

            /** Transforms past everything applied since the base revision, then applies. */
            TextOperation receive(int author, int baseRevision, TextOperation operation) {
                TextOperation transformed = operation;
                for (Applied since : history.subList(baseRevision, history.size())) {
                    transformed = TextOperation.transform(transformed, since.operation()).aPrime();
                }
                text = transformed.apply(text);
                history.add(new Applied(author, transformed));
                return transformed;
            }
        }

        final class Client {
            final int id;
            final Deque<Pushed> inbox = new ArrayDeque<>();
            String text = "";
            int revision;
            OtClient state = OtClient.synced();

            Client(int id) {
                this.id = id;
            }

            void edit(TextOperation operation) {
                text = operation.apply(text);
                OtClient.Outgoing out = state.applyClient(operation);
                state = out.state();
                out.send().ifPresent(this::send);
            }

            void receive() {
                Pushed pushed = inbox.poll();
                if (pushed == null) {
                    return;
                }
                if (pushed.ack()) {
                    acknowledged().ifPresent(this::send);
                } else {
                    applyRemote(pushed.operation());
                }
            }

            void catchUp() {
                for (Applied missed : new ArrayList<>(server.history.subList(revision, server.history.size()))) {
                    if (missed.author() == id) {
                        acknowledged();
                    } else {
                        applyRemote(missed.operation());
                    }
                }
                state.inFlight().ifPresent(this::send);
            }

            private Optional<TextOperation> acknowledged() {
                revision++;
                OtClient.Outgoing out = state.serverAck();
                state = out.state();
                return out.send();
            }

            private void applyRemote(TextOperation operation) {
                revision++;
                OtClient.Incoming in = state.applyServer(operation);
                state = in.state();
                text = in.apply().apply(text);
            }

            private void send(TextOperation operation) {
                toServer.get(id).add(new Sent(revision, operation));
            }
        }
    }
}
