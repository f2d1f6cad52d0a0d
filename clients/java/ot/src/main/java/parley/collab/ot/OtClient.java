package parley.collab.ot;

import java.util.Optional;

/**
 * The client side of OT against a server that orders all operations (ot.js's client model).
 * A client has at most one operation in flight; edits made meanwhile gather in one buffer,
 * sent when the server acknowledges the one in flight.
 *
 * <p>Each state is an immutable value; every transition returns the next state together with
 * what the caller must do: send an operation, or apply one to the local text. The caller
 * owns the text, the connection and the revision counter: the revision (the number of server
 * operations the local text reflects) goes up by one on every {@link #applyServer} and every
 * {@link #serverAck}, and an operation is always sent with the revision current when it is
 * sent.
 *
 * <p>After a reconnect, the caller fetches the operations it missed since its revision and
 * feeds them in order, sending nothing meanwhile: its own in-flight operation, if the server
 * applied it before the connection dropped, counts as {@link #serverAck}, every other one goes
 * to {@link #applyServer}. (Since a client sends only after the previous acknowledgement, any
 * operation of its own after its revision is the one in flight.) Then, if {@link #inFlight()}
 * is present, send it with the now-current revision: either the server never received it, or
 * it was the buffer promoted by that acknowledgement; either way it has been transformed along
 * the way and fits that revision.
 */
public sealed interface OtClient permits OtClient.Synchronized, OtClient.AwaitingConfirm, OtClient.AwaitingWithBuffer {

    /** Nothing unacknowledged: the local text equals the server's at the client's revision. */
    record Synchronized() implements OtClient {}

    /** {@code outstanding} was sent and awaits the server's acknowledgement. */
    record AwaitingConfirm(TextOperation outstanding) implements OtClient {}

    /** {@code outstanding} awaits acknowledgement; {@code buffer} holds the local edits since. */
    record AwaitingWithBuffer(TextOperation outstanding, TextOperation buffer) implements OtClient {}

    /** A new state, and the operation to send to the server now, if any. */
    record Outgoing(OtClient state, Optional<TextOperation> send) {}

    /** A new state, and the operation to apply to the local text. */
    record Incoming(OtClient state, TextOperation apply) {}

    /** The state of a client whose text matches the server's. */
    static OtClient synced() {
        return new Synchronized();
    }

    /**
     * The user edited the local text (already applied there) with {@code operation}.
     *
     * @throws InvalidOperationException {@code base_length_mismatch} if the operation does not
     *     follow the buffered edits
     */
    default Outgoing applyClient(TextOperation operation) {
        if (this instanceof AwaitingConfirm waiting) {
            return new Outgoing(new AwaitingWithBuffer(waiting.outstanding(), operation), Optional.empty());
        }
        if (this instanceof AwaitingWithBuffer waiting) {
            return new Outgoing(new AwaitingWithBuffer(waiting.outstanding(),
                    waiting.buffer().compose(operation)), Optional.empty());
        }
        return new Outgoing(new AwaitingConfirm(operation), Optional.of(operation));
    }

    /**
     * The server broadcast {@code operation}, made by someone else. The result says how to
     * change the local text, which also holds this client's unacknowledged edits.
     *
     * @throws InvalidOperationException {@code base_length_mismatch} if the operation does not
     *     fit the client's revision
     */
    default Incoming applyServer(TextOperation operation) {
        // The client's pending edits go first in transform, as on the server, so both sides
        // break insert ties the same way.
        if (this instanceof AwaitingConfirm waiting) {
            TextOperation.Transformed pair = TextOperation.transform(waiting.outstanding(), operation);
            return new Incoming(new AwaitingConfirm(pair.aPrime()), pair.bPrime());
        }
        if (this instanceof AwaitingWithBuffer waiting) {
            TextOperation.Transformed first = TextOperation.transform(waiting.outstanding(), operation);
            TextOperation.Transformed second = TextOperation.transform(waiting.buffer(), first.bPrime());
            return new Incoming(new AwaitingWithBuffer(first.aPrime(), second.aPrime()), second.bPrime());
        }
        return new Incoming(this, operation);
    }

    /**
     * The server acknowledged the operation in flight; the buffer, if any, is sent next.
     *
     * @throws IllegalStateException if nothing is in flight
     */
    default Outgoing serverAck() {
        if (this instanceof AwaitingConfirm) {
            return new Outgoing(synced(), Optional.empty());
        }
        if (this instanceof AwaitingWithBuffer waiting) {
            return new Outgoing(new AwaitingConfirm(waiting.buffer()), Optional.of(waiting.buffer()));
        }
        throw new IllegalStateException("an acknowledgement arrived but no operation is in flight");
    }

    /** The operation sent and not yet acknowledged: what to send again after a reconnect. */
    default Optional<TextOperation> inFlight() {
        if (this instanceof AwaitingConfirm waiting) {
            return Optional.of(waiting.outstanding());
        }
        if (this instanceof AwaitingWithBuffer waiting) {
            return Optional.of(waiting.outstanding());
        }
        return Optional.empty();
    }
}
