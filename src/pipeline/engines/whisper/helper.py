"""Octavia's whisper helper: transcribes WAV files with faster-whisper, one at a time.

A worker starts it (`python -I -u -c <this file> octavia-whisper-helper`) and speaks JSON
lines over its stdin and stdout. Once faster_whisper is imported it writes
{"ready": true, "faster_whisper": VERSION}. Then, for each request

  {"wav": PATH, "model": DIR, "language": "en" | null, "languages": ["en", "es"],
   "prompt": TEXT | null, "beam_size": 5, "threads": 1}

it writes one answer: {"language": CODE, "probability": P, "duration": SECONDS,
"words": [{"start": S, "end": S, "text": T, "segment": I}, ...] (a word's text starts
with a space unless it continues the word before: "o" "'clock"), "segments": [{"start",
"end", "text"}, ...]}, or {"error": MESSAGE}. With "language": null the language is
detected, choosing only among "languages". {"detect": PATH, "model": DIR, "languages":
[...], "threads": N} answers {"language": CODE, "probability": P, "top_language": CODE,
"top_probability": P}: the likeliest of "languages" and of all (from the first 30 s of
speech). {"load": DIR, "threads": N} loads a model
ahead of its first request and answers {"loaded": DIR}. Models stay loaded between
requests. Anything the libraries print goes to stderr: stdout carries the protocol alone.
"""

import json
import os
import sys

protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def send(message):
    protocol.write(json.dumps(message, ensure_ascii=False) + "\n")
    protocol.flush()


try:
    import faster_whisper
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps
except Exception as e:  # the worker names the command that installs it
    print(f"cannot import faster_whisper: {e!r}", file=sys.stderr)
    sys.exit(3)

models = {}


def model(path, threads):
    key = (path, threads)
    if key not in models:
        models[key] = WhisperModel(
            path, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1
        )
    return models[key]


def detect(m, audio, languages):
    """The most likely of `languages` (codes) and its probability, and the most likely
    language of all and its probability. Silence is the first of `languages`, at 0."""
    if not m.model.is_multilingual:
        return "en", 1.0, "en", 1.0
    chunks = get_speech_timestamps(audio, VadOptions())
    if not chunks:
        return languages[0], 0.0, languages[0], 0.0
    speech = np.concatenate(collect_chunks(audio, chunks)[0], axis=0)
    _, _, probabilities = m.detect_language(speech)
    top, top_p = probabilities[0]
    allowed = [(p, code) for code, p in probabilities if code in languages]
    if not allowed:
        return languages[0], 0.0, top, top_p
    p, code = max(allowed)
    return code, p, top, top_p


def detect_only(request):
    m = model(request["model"], int(request.get("threads", 1)))
    audio = decode_audio(request["detect"], sampling_rate=16000)
    language, probability, top, top_p = detect(m, audio, request.get("languages") or ["en"])
    return {
        "language": language,
        "probability": probability,
        "top_language": top,
        "top_probability": top_p,
    }


def transcribe(request):
    m = model(request["model"], int(request.get("threads", 1)))
    audio = decode_audio(request["wav"], sampling_rate=16000)
    language = request.get("language")
    probability = 1.0
    if language is None:
        language, probability, _, _ = detect(m, audio, request.get("languages") or ["en"])
    segments, info = m.transcribe(
        audio,
        language=language,
        beam_size=int(request.get("beam_size", 5)),
        word_timestamps=True,
        condition_on_previous_text=False,
        initial_prompt=request.get("prompt"),
        # Without it Whisper hears "You" in silence.
        vad_filter=True,
    )
    words, parts = [], []
    for i, segment in enumerate(segments):
        parts.append(
            {"start": segment.start, "end": segment.end, "text": segment.text.strip()}
        )
        for w in segment.words or []:
            words.append(
                {"start": w.start, "end": w.end, "text": w.word, "segment": i}
            )
    return {
        "language": language,
        "probability": probability,
        "duration": info.duration,
        "words": words,
        "segments": parts,
    }


send({"ready": True, "faster_whisper": faster_whisper.__version__})
for line in sys.stdin:
    if not line.strip():
        continue
    try:
        request = json.loads(line)
        if "load" in request:
            model(request["load"], int(request.get("threads", 1)))
            send({"loaded": request["load"]})
        elif "detect" in request:
            send(detect_only(request))
        else:
            send(transcribe(request))
    except Exception as e:
        send({"error": f"{type(e).__name__}: {e}"})
