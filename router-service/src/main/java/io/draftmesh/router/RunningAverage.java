package io.draftmesh.router;

/**
 * A cost measured online, as a running average that weighs the latest sample {@link #LATEST}: it
 * follows a cost that changes (a longer context, a busier machine) within a few samples and is not
 * thrown by one slow sample. The gates that choose between speculating and plain target steps keep
 * their costs in these.
 */
final class RunningAverage {
  /** The weight of the latest sample. */
  static final double LATEST = 0.25;

  private double value = Double.NaN;

  void add(double sample) {
    value = Double.isNaN(value) ? sample : (1 - LATEST) * value + LATEST * sample;
  }

  /** NaN before the first sample. */
  double value() {
    return value;
  }

  boolean known() {
    return !Double.isNaN(value);
  }
}
