package io.draftmesh.kvcache.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.ProtoUtils;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses block-carrying messages (Put chunks, Get chunks) so that their {@code bytes} fields alias
 * the transport's receive buffers instead of being copied twice (gRPC's stock marshaller copies a
 * message into a byte array, and protobuf copies every {@code bytes} field out of it again; for a 1
 * MiB chunk both copies are also humongous allocations for G1).
 *
 * <p>The aliased buffers belong to the transport until {@link #release} is called with the parsed
 * message, so the one handler that receives it must read its bytes and release it before returning,
 * in a {@code finally}: a message kept after that would read recycled memory, and one never
 * released leaks a pooled Netty buffer. Messages the transport cannot lend (an in-process or empty
 * one) are parsed the ordinary way, and releasing them does nothing. Serializing is the stock
 * marshaller's.
 */
public final class AliasingMarshaller<T extends Message>
    implements MethodDescriptor.PrototypeMarshaller<T> {
  private final MethodDescriptor.PrototypeMarshaller<T> stock;
  private final Parser<T> parser;
  // Each aliased message's detached receive buffers, closed by release.
  private final Map<T, InputStream> lent = Collections.synchronizedMap(new IdentityHashMap<>());

  @SuppressWarnings("unchecked")
  public AliasingMarshaller(T defaultInstance) {
    this.stock = (MethodDescriptor.PrototypeMarshaller<T>) ProtoUtils.marshaller(defaultInstance);
    this.parser = (Parser<T>) defaultInstance.getParserForType();
  }

  @Override
  public Class<T> getMessageClass() {
    return stock.getMessageClass();
  }

  @Override
  public T getMessagePrototype() {
    return stock.getMessagePrototype();
  }

  @Override
  public InputStream stream(T value) {
    return stock.stream(value);
  }

  @Override
  public T parse(InputStream stream) {
    if (!(stream instanceof KnownLength
        && stream instanceof Detachable
        && stream instanceof HasByteBuffer
        && ((HasByteBuffer) stream).byteBufferSupported())) {
      return stock.parse(stream);
    }
    InputStream detached;
    CodedInputStream in;
    try {
      int size = stream.available();
      if (size == 0) {
        return stock.parse(stream);
      }
      detached = ((Detachable) stream).detach();
      // Walk the buffers (skip moves past each one), then rewind: the message aliases them all.
      detached.mark(size);
      List<ByteString> parts = new ArrayList<>();
      while (detached.available() > 0) {
        ByteBuffer b = ((HasByteBuffer) detached).getByteBuffer();
        if (b == null) {
          break;
        }
        parts.add(UnsafeByteOperations.unsafeWrap(b));
        detached.skip(b.remaining());
      }
      detached.reset();
      in = ByteString.copyFrom(parts).newCodedInput(); // a rope over the parts: no copy
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    in.enableAliasing(true);
    in.setSizeLimit(Integer.MAX_VALUE); // the transport enforced the message size limit
    T message;
    try {
      message = parser.parseFrom(in);
      in.checkLastTagWas(0);
    } catch (InvalidProtocolBufferException e) {
      close(detached);
      throw Status.INTERNAL
          .withDescription("invalid protobuf byte sequence")
          .withCause(e)
          .asRuntimeException();
    }
    lent.put(message, detached);
    return message;
  }

  /** Gives the receive buffers of {@code message} back; its bytes must not be read after this. */
  public void release(T message) {
    InputStream s = lent.remove(message);
    if (s != null) {
      close(s);
    }
  }

  /** Messages parsed and not yet released (a test's leak check). */
  public int unreleased() {
    return lent.size();
  }

  private static void close(InputStream s) {
    try {
      s.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
