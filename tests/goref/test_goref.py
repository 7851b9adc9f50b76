#!/usr/bin/python3
"""The differential test of the relay's price field reader (json_fields,
common/jsonread.c) against Go's encoding/json (tests/goref/main.go,
json.Unmarshal into a struct with a field for each path, as new-api decodes
a body): every case of a corpus is read by both, and the two answers must be
the same, the refusals included. Some cases also say the answer both must
give.

The corpus: the cases of a price that once read a body unlike Go (numbers
and literals, null, NUL in a key, folded keys, model and model_name,
trailing bytes, forms, nesting, duplicates, merged objects), Go's syntax at
its edges, and request bodies of Kling, Runway, Suno, Pika and Jimeng as
public API documentation shows them (the address is noted at each).

Prints one line per case and ends with `price-reader: N passed, M failed`.
Needs go (Debian's golang-go) and $BLTCY_BUILD/price-scan (make).

Usage: test_goref.py [-k SUBSTRING]...
"""

import os
import sys
sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pair  # noqa: E402

NAME = "price-reader"

KLING = ["model_name", "model", "duration", "mode", "cfg_scale", "sound",
         "camera_control.type", "camera_control.config.zoom",
         "watermark_info.enabled", "aspect_ratio", "keyframes"]
RUNWAY = ["model", "duration", "ratio", "seed", "promptText",
          "contentModeration.publicFigureThreshold", "watermark"]
SUNO = ["mv", "model", "make_instrumental", "continue_at", "tags", "title",
        "task", "continue_clip_id"]
PIKA = ["model", "modelVersion", "duration", "pikaffect", "options.aspectRatio",
        "options.frameRate", "options.parameters.guidanceScale",
        "options.parameters.seed", "options.extend", "ingredientMode"]
JIMENG = ["model", "req_key", "duration", "aspect_ratio", "cfg_scale", "seed",
          "frames"]


def ok(*vals):
    """The answer both must give: "ok" and each value (None: absent, "L":
    held as no value)."""
    out = ["ok"]
    for v in vals:
        if v is None:
            out.append("-")
        elif v == "L":
            out.append("L")
        else:
            out.append("=" + (v.encode() if isinstance(v, str) else v).hex())
    return " ".join(out)


ERR = "error"
D_M = ["duration", "mode"]


def deep(n, inner=b"1"):
    return b'{"duration":10,"x":' + b"[" * n + inner + b"]" * n + b',"mode":"pro"}'


def deep_obj(n):
    return b'{"duration":10,"x":' + b'{"a":' * n + b"1" + b"}" * n + b"}"


CASES = [
    # ---- section 1 of the review: numbers and literals hide nothing
    ("seed 42", D_M, b'{"model_name":"kling-v1","seed":42,"duration":10,"mode":"pro"}',
     ok("10", "pro")),
    ("cfg_scale 0.5", D_M, b'{"cfg_scale":0.5,"duration":"10","mode":"pro"}', ok("10", "pro")),
    ("watermark false", D_M, b'{"watermark":false,"duration":10,"mode":"pro"}',
     ok("10", "pro")),
    ("x null", D_M, b'{"x":null,"duration":10,"mode":"pro"}', ok("10", "pro")),
    ("numbers as the relay prints them", ["a", "b", "c", "d", "e", "f", "g", "h"],
     b'{"a":10,"b":10.0,"c":1e1,"d":1E+1,"e":0.5,"f":-0,"g":1e400,"h":-2.50e-3}',
     ok("10", "10", "10", "10", "0.5", "0", "inf", "-0.0025")),
    ("large numbers", ["a", "b", "c", "d"],
     b'{"a":999999999999999,"b":1e15,"c":123456789012345678,"d":-1e15}',
     ok("999999999999999", "1e+15", "1.23456789012346e+17", "-1e+15")),
    ("a long number", ["a"], b'{"a":0.' + b"0" * 300 + b'1e305}', ok("10000")),
    ("literals", ["a", "b"], b'{"a":true,"b":false}', ok("true", "false")),
    # a later null leaves the value; NUL in a key names another field
    ("later duration null", D_M, b'{"duration":10,"mode":"pro","duration":null}',
     ok("10", "pro")),
    ("duration\\u0000", D_M, b'{"duration\\u0000":10,"mode\\u0000":"pro"}', ok(None, None)),
    ("duration\\u0000 after duration", D_M, b'{"duration":5,"duration\\u0000":10}',
     ok("5", None)),
    # keys folded as Go folds them
    ("long s raw", ["sound", "keyframes"], '{"\u017fOUND":"on"}'.encode(), ok("on", None)),
    ("long s escaped", ["sound"], b'{"\\u017found":"on"}', ok("on")),
    ("kelvin raw", ["keyframes"], '{"\u212aeyframes":"2"}'.encode(), ok("2")),
    ("kelvin escaped", ["keyframes"], b'{"\\u212Aeyframes":"2"}', ok("2")),
    ("kelvin and long s together", ["task"], '{"ta\u017f\u212a":"x"}'.encode(), ok("x")),
    ("other non-ASCII letters do not fold", ["sound", "keyframes"],
     '{"\u0455ound":"on","\u212beyframes":1,"\u1e9eound":1}'.encode(), ok(None, None)),
    ("case", D_M, b'{"DURATION":10,"Mode":"pro"}', ok("10", "pro")),
    ("paths equal without case are one field", ["mode", "MODE", "Mode"],
     b'{"mOdE":"pro"}', ok("pro", "pro", "pro")),
    # model and model_name: both read
    ("model and model_name", ["model_name", "model"],
     b'{"model":"kling-v1","model_name":"kling-v2-master"}', ok("kling-v2-master", "kling-v1")),
    # trailing bytes, forms, not an object
    ("trailing bytes", D_M, b'{"duration":10,"mode":"pro"} x', ERR),
    ("a second object", D_M, b'{"duration":10}{"mode":"pro"}', ERR),
    ("trailing blanks", D_M, b'{"duration":10} \t\r\n', ok("10", None)),
    ("a form", D_M, b"duration=10&mode=pro", ERR),
    ("multipart", D_M, b'--b\r\nContent-Disposition: form-data; name="duration"\r\n\r\n10\r\n'
     b'--b\r\nContent-Disposition: form-data; name="mode"\r\n\r\npro\r\n--b--\r\n', ERR),
    ("an array", D_M, b'[{"duration":10}]', ERR),
    ("a string", D_M, b'"duration"', ERR),
    ("a number", D_M, b"10", ERR),
    ("true", D_M, b"true", ERR),
    ("null", D_M, b"null", ok(None, None)),
    ("blanks and null", D_M, b" \n null \t", ok(None, None)),
    ("nothing but blanks", D_M, b"   ", ERR),
    ("a byte order mark", D_M, b'\xef\xbb\xbf{"duration":10}', ERR),
    # nesting: Go's limit is 10000 open brackets
    ("deep nesting 9999", D_M, deep(9999), ok("10", "pro")),
    ("deep nesting 10000", D_M, deep(9998), ok("10", "pro")),
    ("deep nesting over Go's limit", D_M, deep(10000), ERR),
    ("deep objects at the limit", ["duration"], deep_obj(9999), ok("10")),
    ("deep objects over the limit", ["duration"], deep_obj(10000), ERR),
    ("deep path", ["a.b.c.d.e.f.g.h"],
     b'{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":"x"}}}}}}}}', ok("x")),
    # duplicates: the last wins; an object twice merges
    ("duplicates", D_M, b'{"mode":"std","duration":5,"MODE":"pro","Duration":10}',
     ok("10", "pro")),
    ("merged objects", ["a.b", "a.c", "a.d"], b'{"a":{"b":1,"d":1},"A":{"c":2,"d":null}}',
     ok("1", "2", "1")),
    ("an object after a scalar", ["a.b"], b'{"a":{"b":1},"a":"x","a":[1,2],"a":7}', ok("1")),
    ("a scalar where an object goes", ["a.b"], b'{"a":"x"}', ok(None)),
    ("an object where a scalar goes", ["mode"], b'{"mode":"pro","mode":{"x":1}}', ok(None)),
    ("an array where a scalar goes", ["mode"], b'{"mode":"pro","mode":["pro"]}', ok(None)),
    ("a field and the way to another", ["a", "a.b"], b'{"a":"x","a":{"b":1}}', ok(None, "1")),
    ("a field and the way to another, scalar last", ["a", "a.b"],
     b'{"a":{"b":1},"a":"x","a":null}', ok("x", "1")),
    # strings as Go decodes them
    ("invalid UTF-8", ["mode"], b'{"mode":"a\xffb\xc0\xafc\xed\xa0\x80"}',
     ok("a\ufffdb\ufffd\ufffdc\ufffd\ufffd\ufffd")),
    ("lone surrogates", ["a", "b"], b'{"a":"\\ud800x","b":"\\udc00\\ud800\\u0041"}',
     ok("\ufffdx", "\ufffd\ufffdA")),
    ("a surrogate pair", ["a"], b'{"a":"\\ud83d\\ude00"}', ok("\U0001f600")),
    ("escapes", ["a"], b'{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}', ok('"\\/\b\f\n\r\t\u00e9')),
    ("64 bytes", ["a"], b'{"a":"' + b"x" * 64 + b'"}', ok("x" * 64)),
    ("65 bytes", ["a"], b'{"a":"' + b"x" * 65 + b'"}', ok("L")),
    ("a NUL in a value", ["mode"], b'{"mode":"pro\\u0000"}', ok("L")),
    ("a long key", ["a"], b'{"' + b"a" * 100 + b'":1,"a":2}', ok("2")),
    # Go's syntax at its edges
    ("a leading zero", ["a"], b'{"a":01}', ERR),
    ("0.", ["a"], b'{"a":0.}', ERR),
    ("1e", ["a"], b'{"a":1e}', ERR),
    (".5", ["a"], b'{"a":.5}', ERR),
    ("+1", ["a"], b'{"a":+1}', ERR),
    ("-", ["a"], b'{"a":-}', ERR),
    ("NaN", ["a"], b'{"a":NaN}', ERR),
    ("a trailing comma in an object", ["a"], b'{"a":1,}', ERR),
    ("a trailing comma in an array", ["a"], b'{"x":[1,],"a":1}', ERR),
    ("a raw tab in a string", ["a"], b'{"a":"x\ty"}', ERR),
    ("a raw newline in a skipped string", ["a"], b'{"x":"a\nb","a":1}', ERR),
    ("DEL in a string", ["a"], b'{"a":"x\x7fy"}', ok("x\x7fy")),
    ("a bad escape", ["a"], b'{"a":"\\x"}', ERR),
    ("a short \\u", ["a"], b'{"a":"\\u12"}', ERR),
    ("single quotes", ["a"], b"{'a':1}", ERR),
    ("a bare key", ["a"], b"{a:1}", ERR),
    ("no colon", ["a"], b'{"a" 1}', ERR),
    ("unclosed", ["a"], b'{"a":1', ERR),
    ("tru", ["a"], b'{"a":tru}', ERR),
    ("nulls", ["a"], b'{"a":nulls}', ERR),
    ("a comment", ["a"], b'{"a":1 /* x */}', ERR),
    ("a vertical tab", ["a"], b'{"a":1\x0b}', ERR),
    ("empty", ["a"], b"", ERR),
    ("{}", ["a"], b"{}", ok(None)),
    ("no valid path", ["a..b", "a-b", ".a", "a."], b'{"a":{"b":1},"a-b":1}',
     ok(None, None, None, None)),
]

# ---- request bodies as public API documentation shows them

CASES += [
    # https://s.apifox.cn/878754d8-ccde-4450-b437-77bcbf443c97/api-427944990
    # (Kling text2video, the request schema's example)
    ("kling text2video (apifox schema)", KLING, b'''{
"model_name": "string",
"prompt": "string",
"multi_shot": true,
"shot_type": "string",
"multi_prompt": [
{
"index": 0,
"prompt": "string",
"duration": "string"
}
],
"negative_prompt": "string",
"cfg_scale": 0,
"mode": "string",
"sound": "string",
"camera_control": {
"type": "string",
"config": {
"horizontal": 0,
"vertical": 0,
"pan": 0,
"tilt": 0,
"roll": 0,
"zoom": 0
}
},
"aspect_ratio": "string",
"duration": "string",
"watermark_info": {
"enabled": true
},
"callback_url": "string",
"external_task_id": "string"
}''', ok("string", None, "string", "string", "0", "string", "string", "0", "true",
         "string", None)),
    # https://open-route-api.fashionlabs.cn/441372936e0 (Kling image2video)
    ("kling image2video (fashionlabs)", KLING, b'''{
"model_name": "kling-v1-6",
"prompt": "A gentle camera pan revealing the scene",
"image": "https://example.com/reference.jpg",
"mode": "std",
"duration": "5",
"aspect_ratio": "16:9"
}''', ok("kling-v1-6", None, "5", "std", None, None, None, None, None, "16:9", None)),
    # https://docs.qingbo.dev/en/api-reference/video/kling (model, extra.mode)
    ("kling (qingbo)", KLING + ["extra.mode"], '''{
"model": "kling-v2-master",
"action": "generate",
"prompt": "一条锦鲤在清澈的池塘中游动,水面波光粼粼",
"aspect_ratio": "16:9",
"duration": 5,
"extra": {
"mode": "pro"
}
}'''.encode(), None),
    # https://docs.comfy.org/built-in-nodes/partner-node/video/kwai_vgi/
    # kling-camera-control-t2v (kling-v1-5, pro, 5 s, cfg_scale, camera)
    ("kling camera control (comfy)", KLING, b'{"model_name":"kling-v1-5","prompt":"a cat",'
     b'"negative_prompt":"","cfg_scale":0.75,"aspect_ratio":"16:9","mode":"pro",'
     b'"duration":"5","camera_control":{"type":"simple","config":{"horizontal":0,'
     b'"vertical":0,"pan":0,"tilt":0,"roll":0,"zoom":-5.5}}}',
     ok("kling-v1-5", None, "5", "pro", "0.75", None, "simple", "-5.5", None, "16:9", None)),
    # https://docs.dev.runwayml.com/guides/using-the-api (image_to_video)
    ("runway gen4.5 (runway guide)", RUNWAY, b'''{"model": "gen4.5",
"promptImage": "https://upload.wikimedia.org/wikipedia/commons/8/85/Tour_Eiffel_Wikimedia_Commons_(cropped).jpg",
"promptText": "A timelapse on a sunny day with clouds flying by",
"ratio": "1280:720", "duration": 5}''',
     ok("gen4.5", "5", "1280:720", None, "A timelapse on a sunny day with clouds flying by",
        None, None)),
    # https://docs.fast-token.com/en/other-model/video/runway/
    # 2.RunwaySubmitVideoGenerationTask (model, ratio, seed 0..4294967295)
    ("runway gen4_turbo with seed (fast-token)", RUNWAY,
     b'{"promptImage":"https://example.com/a.jpg","model":"gen4_turbo","ratio":"1280:720",'
     b'"seed":4294967295,"promptText":"a cat","duration":10,'
     b'"contentModeration":{"publicFigureThreshold":"auto"}}',
     ok("gen4_turbo", "10", "1280:720", "4294967295", "a cat", "auto", None)),
    # https://aivideoapi.readme.io/reference/
    # generate_by_image_and_description_runway_generate_imagedescription_post
    ("runway gen3 (aivideoapi)", RUNWAY, b'''{
"text_prompt": "ocean",
"img_prompt": "https://files.aivideoapi.com/example/ocean.jpg",
"model": "gen3",
"image_as_end_frame": false,
"flip": false,
"motion": 5,
"seed": 0,
"callback_url": "",
"time": 5
}''', ok("gen3", None, None, "0", None, None, None)),
    # https://useapi.net/docs/api-runwayml-v1/post-runwayml-gen3turbo-create.html
    # (as printed there: a comma is missing after "seed")
    ("runway gen3turbo (useapi, as printed)", RUNWAY, b'''{
    "firstImage_assetId": "Optional assetId of first image asset",
    "text_prompt": "Optional text prompt",
    "aspect_ratio": "portrait",
    "seconds": 5,
    "seed": 12345678
    "exploreMode": true,
    "maxJobs": 5
}''', ERR),
    # https://personal-40b49350.mintlify.app/en/video/runway (watermark)
    ("runway gen3a_turbo with watermark", RUNWAY,
     b'{"model":"gen3a_turbo","promptImage":"https://example.com/a.png","promptText":"waves",'
     b'"duration":5,"ratio":"16:9","watermark":false}',
     ok("gen3a_turbo", "5", "16:9", None, "waves", None, "false")),
    # https://docs.rixapi.com/en/guides/suno (inspiration, custom, pure music)
    ("suno inspiration (rixapi)", SUNO, b'{\n"gpt_description_prompt": "Nostalgia"\n}',
     ok(None, None, None, None, None, None, None, None)),
    ("suno custom (rixapi)", SUNO, b'''{
"prompt": "[Verse]\\nContinuous days have been busy\\nEndless piles of files",
"mv": "chirp-v3-5",
"title": "work",
"tags": " edm"
}''', ok("chirp-v3-5", None, None, None, " edm", "work", None, None)),
    ("suno pure music (rixapi)", SUNO, b'''{
"prompt": "",
"tags": "heavy metal",
"mv": "chirp-v3-5",
"title": "Beijing",
"continue_clip_id": null,
"continue_at": null,
"infill_start_s": null,
"infill_end_s": null
}''', ok("chirp-v3-5", None, None, None, "heavy metal", "Beijing", None, None)),
    ("suno instrumental (rixapi)", SUNO, b'''{
"gpt_description_prompt": "An anthem dance pop song about dancing all night long",
"mv": "chirp-v3-5",
"prompt": "",
"make_instrumental": true
}''', ok("chirp-v3-5", None, "true", None, None, None, None, None)),
    # https://gpt.morphogen.top/en/suno/task-song.html
    ("suno inspiration (morphogen)", SUNO, b'''{
    "gpt_description_prompt": "A bright female vocal Chinese song with a memorable weekend theme",
    "mv": "chirp-v3-0"
  }''', ok("chirp-v3-0", None, None, None, None, None, None, None)),
    # https://im06lq19wz.apifox.cn/api-262294526 (continuation; the
    # "true/false" of the page is no JSON, and with it nothing is)
    ("suno continuation (apifox, true)", SUNO,
     b'{"prompt":"Creation prompt","title":"Song title","tags":"Style1,Style2,Style3",'
     b'"make_instrumental":true,"mv":"chirp-v3-5-upload","task":"extend",'
     b'"task_id":"Original task ID","continue_at":120.00,"continue_clip_id":"Original song ID"}',
     ok("chirp-v3-5-upload", None, "true", "120", "Style1,Style2,Style3", "Song title",
        "extend", "Original song ID")),
    ("suno continuation (apifox, as printed)", SUNO,
     b'{"prompt":"Creation prompt","title":"Song title","tags":"Style1,Style2,Style3",'
     b'"make_instrumental":true/false,"mv":"chirp-v3-5-upload","task":"extend",'
     b'"task_id":"Original task ID","continue_at":120.00,"continue_clip_id":"Original song ID"}',
     ERR),
    # https://gpt.morphogen.top/en/video/pika/generate.html and
    # https://docs.yutoai.net/en/api/doc-5923404.html (Pika 1.5)
    ("pika 1.5 (yutoai)", PIKA, b'''{
"pikaffect": "",
"promptText": "moving",
"model": "1.5",
"options": {
"aspectRatio": 1.7777777777777777,
"frameRate": 24,
"camera": {},
"parameters": {
"guidanceScale": 12,
"motion": 1,
"negativePrompt": ""
},
"extend": false
},
"image": ""
}''', ok("1.5", None, None, "", "1.77777777777778", "24", "12", None, "false", None)),
    # https://apidog.com/apidoc/shared/e30f654f-c3b5-469f-b0bc-582e1bb6f693/
    # generate-pikaart-1-0-12510421e0 (camera, seed null)
    ("pika 1.0 (pixapi)", PIKA, b'''{
"ai": "pika1.0",
"accountId": null,
"rotationGroupId": 1,
"styleId": null,
"promptText": "3D render",
"imageOrVideoUrl": "https://img.freepik.com/premium-photo/natural-beauty-portrait-woman-autumn-forest_1351942-2475.jpg",
"sfx": true,
"options": {
"aspectRatio": "16:9",
"frameRate": 24,
"camera": {
"pan": "right",
"tilt": "up",
"rotate": "cw",
"zoom": "in"
},
"parameters": {
"guidanceScale": 12,
"motion": 1,
"negativePrompt": "",
"seed": null
},
"extend": false
},
"webhookUrl": "https://example.com/api/result"
}''', ok(None, None, None, None, "16:9", "24", "12", None, "false", None)),
    # https://302ai.apifox.cn/api-252638488 (Pika 2.0 ingredients)
    ("pika 2.0 ingredients (302ai)", PIKA, b'''{
"modelVersion": "2.0-contextualize",
"promptText": "A fluffy penguin",
"duration": 5,
"options": {
"aspectRatio": 1.777,
"frameRate": 24
},
"ingredientMode": "precise",
"ingredients": [
"https://file.302ai.cn/gpt/photoshow/20240806/feed8cfd4dba495bb444a3de183fd385.jpeg",
"https://file.302ai.cn/gpt/photoshow/20240806/feed8cfd4dba495bb444a3de183fd385.jpeg"
]
}''', ok(None, "2.0-contextualize", "5", None, "1.777", "24", None, None, None, "precise")),
    # https://doc.aimanyi.top/api-326415500.html (Jimeng submit videos)
    ("jimeng video (aimanyi)", JIMENG,
     '{\n "prompt": "一只小猪在高速公路上快乐的奔跑",\n "duration": 5,\n '
     '"aspect_ratio": "21:9",\n "cfg_scale": 0.5\n}'.encode(),
     ok(None, None, "5", "21:9", "0.5", None, None)),
    # https://docs-model.skyengine.com.cn/api-reference/examples/videos/jimeng
    ("jimeng 3.0 pro (skyengine)", JIMENG, '''{
    "model": "jimeng-video-3.0-pro",
    "prompt": "千军万马奔腾在草原上,阳光明媚,高清画质",
    "req_key": "jimeng_ti2v_v30_pro",
    "seed": -1,
    "frames": 121,
    "aspect_ratio": "16:9"
  }'''.encode(), ok("jimeng-video-3.0-pro", "jimeng_ti2v_v30_pro", None, "16:9", None,
                    "-1", "121")),
    # https://docs.yutoai.net/api/api-300428220.html (the schema's example)
    ("jimeng 3 (yutoai)", JIMENG, b'''{
    "prompt": "string",
    "image_url": "string",
    "duration": 0,
    "aspect_ratio": "string",
    "cfg_scale": 0
}''', ok(None, None, "0", "string", "0", None, None)),
    # https://personal-40b49350.mintlify.app/en/video/jimeng
    ("jimeng (crazyrouter)", JIMENG, b'''{
"model": "jimeng-video-1",
"prompt": "A goldfish swimming in water, sunlight sparkling on the surface"
}''', ok("jimeng-video-1", None, None, None, None, None, None)),
]


def variants(cases):
    """Each documented body again with its keys spelt as Go still matches
    them, and cut short (no JSON)."""
    out = []
    for name, paths, body, want in cases:
        if not name.startswith(("kling", "runway", "suno", "pika", "jimeng")):
            continue
        up = body.replace(b'"duration"', b'"DURATION"').replace(
            b'"mode"', b'"MoDe"').replace(b'"seed"', '"\u017feed"'.encode())
        out.append((name + ", keys in other spellings", paths, up, want))
        out.append((name + ", cut short", paths, body[:len(body) // 2], ERR))
    return out


CASES += variants(CASES)


def main(argv):
    only = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-k"]
    cases = [c for c in CASES if not only or any(k in c[0] for k in only)]
    passed = failed = 0
    try:
        p = pair.Pair()
    except Exception as e:  # noqa: BLE001
        print("not ok - the pair of readers: %s" % e)
        print("%s: 0 passed, 1 failed" % NAME)
        return 1
    try:
        answers = p.answer([(paths, body) for _, paths, body, _ in cases])
    finally:
        p.close()
    for (name, paths, body, want), (go, relay) in zip(cases, answers):
        why = None
        if go != relay:
            why = "Go %s, relay %s" % (go, relay)
        elif want is not None and go != want:
            why = "both %s, want %s" % (go, want)
        if why is None:
            passed += 1
            print("ok - %s" % name)
        else:
            failed += 1
            print("not ok - %s: %s" % (name, why))
    print("%s: %d passed, %d failed" % (NAME, passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
