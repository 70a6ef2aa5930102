package io.draftmesh.engine.checkpoint;

/** A few pages of plain English (written for this project) to train test tokenizers on. */
final class SampleText {
  private SampleText() {}

  static final String TEXT =
      """
      The lighthouse keeper woke before the sun, as he had every morning for thirty years. He \
      climbed the spiral stairs, counted the one hundred and twelve steps, and wiped the salt \
      from the great glass lens. Outside, the sea was grey and calm, and a few gulls were \
      already circling the harbour in search of breakfast.

      In the village below, the baker was pulling the first loaves from her oven. The smell of \
      warm bread drifted up the narrow streets, past the school, the post office and the small \
      church with its green door. Children would soon be walking to their lessons, and the \
      fishermen were checking their nets on the quay.

      "It will rain before noon," said the old captain, looking at the clouds over the hills. \
      "The wind has turned to the west, and the birds are flying low." Nobody argued with him. \
      He had been right about the weather more often than the radio had.

      A river runs through the valley behind the village. In spring it is wide and fast, full of \
      melted snow from the mountains; in late summer it is slow and shallow, and you can cross \
      it on the stepping stones near the mill. Trout hide under the banks, and herons stand in \
      the reeds for hours, waiting without moving.

      The school teacher asked her students to write about what they wanted to be when they grew \
      up. One wanted to be a doctor, another a pilot, a third a farmer like his father. A quiet \
      girl at the back of the room wrote that she wanted to build machines that could think, and \
      that she would teach them to be kind.

      Computers store everything as numbers. A letter is a number, a colour is three numbers, and \
      a picture is a long list of them. When we ask a computer to read a sentence, it first \
      breaks the text into small pieces called tokens, and turns each token into a number it can \
      work with. Common words become a single token; rare words are split into several.

      A language model reads those numbers and predicts the next one. It does this again and \
      again, one token at a time, until the answer is complete. Large models are slow, so people \
      invented tricks: a small, fast model can guess several tokens ahead, and the large model \
      only has to check the guesses. When the guesses are good, the answer arrives much sooner.

      The market opens on Saturday at eight o'clock. There are apples and pears from the \
      orchards, cheese from the farms on the hill, honey, eggs, flowers, and fresh fish from the \
      morning boats. Prices are written in chalk on small black boards: two apples for one coin, \
      a dozen eggs for three, a jar of honey for five.

      In winter the days are short and the nights are long. Families gather around the fire, \
      tell stories and play cards. The wind howls around the chimneys and rattles the windows, \
      but inside it is warm and bright. Snow falls quietly over the roofs, and in the morning the \
      whole valley is white and silent.

      The library has more than ten thousand books, some of them older than the village itself. \
      There are books about history and science, about music and art, about distant countries and \
      the stars. The librarian knows where every book belongs, and she can find the one you need \
      even when you only remember the colour of its cover.

      Every year, on the first day of summer, the village holds a festival. There is music and \
      dancing in the square, a race along the beach, and a competition for the best cake. At \
      night, lanterns are lit along the harbour wall, and small boats with candles are set \
      afloat on the water, drifting slowly out towards the lighthouse and the open sea.

      Questions are the beginning of knowledge. Why is the sky blue? Why does the tide rise and \
      fall twice a day? How do birds know where to fly in autumn? Each answer leads to a new \
      question, and that is how we learn: slowly, patiently, one step after another, like the \
      keeper climbing his stairs in the dark before the morning light.
      """;
}
