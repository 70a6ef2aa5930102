package io.draftmesh.zoo;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * Draws the loss curve as a PNG with plain java.awt (headless): train loss (moving average,
 * converted to bits/byte with the train split's bytes per token) and validation bits/byte against
 * tokens seen.
 */
final class LossCurve {
  private static final int W = 800;
  private static final int H = 480;
  private static final int LEFT = 70;
  private static final int RIGHT = 20;
  private static final int TOP = 40;
  private static final int BOTTOM = 55;

  private LossCurve() {}

  static void write(
      Path file,
      String title,
      List<Trainer.Point> train,
      List<Trainer.Point> valid,
      double bytesPerToken)
      throws IOException {
    System.setProperty("java.awt.headless", "true");
    int n = train.size();
    double[] x = new double[n];
    double[] y = new double[n];
    int window = Math.max(1, n / 50);
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += train.get(i).value();
      if (i >= window) {
        sum -= train.get(i - window).value();
      }
      x[i] = train.get(i).tokens() / 1e6;
      y[i] = Trainer.bitsPerByte(sum / Math.min(i + 1, window), bytesPerToken);
    }
    double xMax = 1e-9;
    double yMin = Double.MAX_VALUE;
    double yMax = -Double.MAX_VALUE;
    for (int i = 0; i < n; i++) {
      xMax = Math.max(xMax, x[i]);
      // Skip the first few noisy points so the interesting part of the curve fills the plot.
      if (i >= Math.min(n - 1, window)) {
        yMin = Math.min(yMin, y[i]);
        yMax = Math.max(yMax, y[i]);
      }
    }
    for (Trainer.Point p : valid) {
      xMax = Math.max(xMax, p.tokens() / 1e6);
      yMin = Math.min(yMin, p.value());
      yMax = Math.max(yMax, p.value());
    }
    if (yMin > yMax) {
      yMin = 0;
      yMax = 1;
    }
    double pad = Math.max(0.05, (yMax - yMin) * 0.05);
    yMin = Math.max(0, yMin - pad);
    yMax = yMax + pad;

    BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(
          RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, W, H);
      int pw = W - LEFT - RIGHT;
      int ph = H - TOP - BOTTOM;
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      for (int i = 0; i <= 5; i++) {
        double v = yMin + (yMax - yMin) * i / 5;
        int py = TOP + ph - (int) Math.round(ph * (double) i / 5);
        g.setColor(new Color(230, 230, 230));
        g.drawLine(LEFT, py, LEFT + pw, py);
        g.setColor(Color.DARK_GRAY);
        g.drawString(String.format("%.2f", v), 10, py + 4);
        double xv = xMax * i / 5;
        int px = LEFT + (int) Math.round(pw * (double) i / 5);
        g.drawString(String.format("%.1fM", xv), px - 14, TOP + ph + 18);
      }
      g.setColor(Color.BLACK);
      g.drawRect(LEFT, TOP, pw, ph);
      g.drawString("tokens seen", LEFT + pw / 2 - 30, H - 12);
      g.drawString("bits/byte", 10, TOP - 10);
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
      g.drawString(title + " — loss curve", LEFT + pw / 2 - 70, 22);

      g.setClip(LEFT, TOP, pw + 1, ph + 1);
      g.setStroke(new BasicStroke(1.5f));
      g.setColor(new Color(31, 119, 180));
      Path2D.Double line = new Path2D.Double();
      for (int i = 0; i < n; i++) {
        double px = LEFT + pw * x[i] / xMax;
        double py = TOP + ph - ph * (y[i] - yMin) / (yMax - yMin);
        if (i == 0) {
          line.moveTo(px, py);
        } else {
          line.lineTo(px, py);
        }
      }
      g.draw(line);
      g.setColor(new Color(214, 39, 40));
      Path2D.Double vline = new Path2D.Double();
      for (int i = 0; i < valid.size(); i++) {
        Trainer.Point p = valid.get(i);
        double px = LEFT + pw * (p.tokens() / 1e6) / xMax;
        double py = TOP + ph - ph * (p.value() - yMin) / (yMax - yMin);
        if (i == 0) {
          vline.moveTo(px, py);
        } else {
          vline.lineTo(px, py);
        }
        g.fillOval((int) px - 3, (int) py - 3, 7, 7);
      }
      g.draw(vline);
      g.setClip(null);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      g.setColor(new Color(31, 119, 180));
      g.fillRect(LEFT + pw - 190, TOP + 10, 12, 3);
      g.drawString("train (moving average)", LEFT + pw - 172, TOP + 15);
      g.setColor(new Color(214, 39, 40));
      g.fillRect(LEFT + pw - 190, TOP + 28, 12, 3);
      g.drawString("validation", LEFT + pw - 172, TOP + 33);
    } finally {
      g.dispose();
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    if (!ImageIO.write(img, "png", tmp.toFile())) {
      throw new IOException("no PNG writer available");
    }
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }
}
