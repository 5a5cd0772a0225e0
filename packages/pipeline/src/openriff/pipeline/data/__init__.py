"""Data: multitrack songs in, training pairs and shards out.

* :mod:`.layout`: dataset layouts (Slakh2100, MUSDB18-HQ, MoisesDB, generic folders) read
  as songs of stems;
* :mod:`.synth`, :mod:`.music`, :mod:`.instruments`: the synthetic multitrack generator;
* :mod:`.codec_audio`: the audio a codec is trained on;
* :mod:`.pairs`: (context, target, reference) pairs cut from songs (Diff-A-Riff 4.1);
* :mod:`.prepare`: pairs through the codec and CLAP into :mod:`.shards`.
"""
