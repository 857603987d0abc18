"""The OpenAPI 3 description of the HTTP API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from service import openapi_corrections
from service.inside import INCLUDES, MAX_ACTIVATIONS_JSON, PATCH, STRIDE

INCLUDE_PATTERN = f"^(({'|'.join(INCLUDES)})(,({'|'.join(INCLUDES)}))*)?$"


def _json(description: str, schema: str) -> dict:
    """A response whose JSON body is components/schemas/<schema>."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error(description: str) -> dict:
    return _json(description, "Error")


def _grid(description: str) -> dict:
    """28 rows of 28 numbers."""
    row = {"type": "array", "minItems": 28, "maxItems": 28, "items": {"type": "number"}}
    return {"type": "array", "minItems": 28, "maxItems": 28, "items": row, "description": description}


def _inside_schemas() -> dict[str, Any]:
    """What ?include=activations and ?include=saliency add to each digit, and the templates route's answer."""
    dense = {
        "type": "object",
        "required": ["name", "kind", "units", "values"],
        "properties": {
            "name": {"type": "string", "description": "the Keras layer's name: hidden1, hidden2, conv3, output"},
            "kind": {"type": "string", "enum": ["dense"]},
            "units": {"type": "integer", "minimum": 1},
            "values": {
                "type": "array",
                "items": {"type": "number"},
                "description": "each unit's activation, rounded to 3 decimals; for `output`, the answer's "
                "probabilities as they are",
            },
        },
    }
    conv = {
        "type": "object",
        "required": ["name", "kind", "shape", "max", "atlas", "grid"],
        "properties": {
            "name": {"type": "string", "description": "the Keras layer's name: conv1a ... conv2c"},
            "kind": {"type": "string", "enum": ["conv"]},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 3,
                "maxItems": 3,
                "description": "[height, width, channels] of the layer's feature maps",
            },
            "max": {"type": "number", "minimum": 0, "description": "the largest activation: 255 in the atlas"},
            "atlas": {
                "type": "string",
                "pattern": "^data:image/png;base64,",
                "description": "every feature map tiled in one grayscale PNG: map k at tile row k // cols, column "
                "k % cols, each height x width pixels, no gaps; pixel = activation / max * 255 (ReLU outputs: >= 0)",
            },
            "grid": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 2,
                "maxItems": 2,
                "description": "[rows, cols] of tiles",
            },
        },
    }
    return {
        "Activations": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [dense, conv]},
            "description": "with ?include=activations: every layer's activations for this digit, in forward order, "
            "the output layer last (softmax: just output; mlp: hidden1, hidden2, output; cnn: conv1a ... conv2c as "
            f"feature-map atlases, conv3's units, output). At most {MAX_ACTIVATIONS_JSON // 1024} KB of JSON per "
            "digit. Read from the model's LiteRT file with every intermediate tensor kept.",
        },
        "Saliency": {
            "type": "object",
            "required": ["method", "measure", "patch", "stride", "digit", "values"],
            "description": "with ?include=saliency: which pixels of the 28x28 model input (the `input` image) drove "
            "the answer, by occlusion (LiteRT has no gradients): each patch x patch window, every `stride` "
            "pixels, is blanked to the background (0); only the windows that touch ink are read, all together",
            "properties": {
                "method": {"type": "string", "enum": ["occlusion"]},
                "measure": {
                    "type": "string",
                    "enum": ["log_odds"],
                    "description": "what a blanked window lowers: log(p_digit / sum of the other nine), in nats (the "
                    "models are so sure that the probability itself hardly moves)",
                },
                "patch": {"type": "integer", "minimum": 1, "example": PATCH},
                "stride": {"type": "integer", "minimum": 1, "example": STRIDE},
                "digit": {"type": "integer", "minimum": 0, "maximum": 9, "description": "the answer explained"},
                "values": _grid(
                    "row-major, per pixel: the mean drop of the log-odds over the windows that contain it, "
                    "rounded to 3 decimals; positive: the pixel supported the answer; 0 where no window touches ink",
                ),
            },
        },
        "Templates": {
            "type": "object",
            "required": ["model", "templates"],
            "properties": {
                "model": {"$ref": "#/components/schemas/ModelRef"},
                "templates": {
                    "type": "array",
                    "minItems": 10,
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "required": ["digit", "weights", "bias"],
                        "properties": {
                            "digit": {"type": "integer", "minimum": 0, "maximum": 9},
                            "weights": _grid(
                                "the weight of each input pixel (scaled to 0..1) for this digit, rounded to 4 "
                                "decimals: the 'picture' of the digit the model learned",
                            ),
                            "bias": {"type": "number"},
                        },
                    },
                },
            },
        },
    }


def _schemas(max_batch: int, max_digits: int) -> dict[str, Any]:
    probabilities = {
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "minItems": 10,
        "maxItems": 10,
        "description": "softmax output; index = digit",
    }
    pixels = {
        "type": "array",
        "minItems": 28,
        "maxItems": 28,
        "description": "28 rows of 28 values, 0-255 or 0-1",
        "items": {"type": "array", "minItems": 28, "maxItems": 28, "items": {"type": "number"}},
    }
    image = {"type": "string", "description": "a data URL (data:image/png;base64,...) or bare base64 image bytes"}
    single = {
        "oneOf": [
            {"type": "object", "required": ["image"], "properties": {"image": image}},
            {"type": "object", "required": ["pixels"], "properties": {"pixels": pixels}},
        ]
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object", "description": "for not_a_digit: the model's guesses"},
                    },
                }
            },
        },
        "Prediction": {
            "type": "object",
            "description": "the digits read in one image, left to right. `digit`, `confidence`, `probabilities` "
            "(and `input`) are those of the first, leftmost digit: for a single digit, what they always were; "
            "for a number, read `number` and `digits`",
            "required": ["number", "digits", "digit", "confidence", "probabilities", "model"],
            "properties": {
                "number": {
                    "type": "string",
                    "nullable": True,
                    "pattern": "^[0-9]+$",
                    "description": 'the digits read, left to right ("7" for one digit); null when a position is '
                    "not a digit",
                },
                "digits": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_digits,
                    "items": {"$ref": "#/components/schemas/Digit"},
                    "description": "one entry per digit read, left to right",
                },
                "digit": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 0,
                    "maximum": 9,
                    "description": "the first digit (null when it is not a digit)",
                },
                "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "the first digit's"},
                "probabilities": {**probabilities, "description": "the first digit's softmax output; index = digit"},
                "model": {"$ref": "#/components/schemas/ModelRef"},
                "input": {
                    "type": "string",
                    "description": "with ?include=input: the first digit's 28x28 model input as a PNG data URL",
                },
                "activations": {"$ref": "#/components/schemas/Activations"},
                "saliency": {"$ref": "#/components/schemas/Saliency"},
            },
        },
        "Digit": {
            "type": "object",
            "required": ["digit", "confidence", "probabilities", "box"],
            "properties": {
                "digit": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 0,
                    "maximum": 9,
                    "description": "null when the model does not take this position for a digit (see reason)",
                },
                "reason": {
                    "type": "string",
                    "enum": ["not_a_digit"],
                    "description": "only when digit is null: why; probabilities still hold the model's guesses",
                },
                "confidence": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "the top probability, calibrated (temperature scaling, see the model's metadata)",
                },
                "probabilities": probabilities,
                "box": {"$ref": "#/components/schemas/Box"},
                "input": {
                    "type": "string",
                    "description": "with ?include=input: this digit's 28x28 model input as a PNG data URL",
                },
                "activations": {"$ref": "#/components/schemas/Activations"},
                "saliency": {"$ref": "#/components/schemas/Saliency"},
            },
        },
        "Box": {
            "type": "object",
            "description": "where the digit is, in the submitted image's pixels (a 'pixels' array: its 28x28 grid): "
            "top-left corner, width, height",
            "required": ["x", "y", "width", "height"],
            "properties": {
                "x": {"type": "integer", "minimum": 0},
                "y": {"type": "integer", "minimum": 0},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
            },
        },
        "ModelRef": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok"]}}},
        "Ready": {
            "type": "object",
            "required": ["status", "model"],
            "properties": {"status": {"enum": ["ready"]}, "model": {"$ref": "#/components/schemas/ModelRef"}},
        },
        "Batch": {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}},
        },
        "JsonRequest": {
            "oneOf": [
                single,
                {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "minItems": 1,
                            # a resource limit, not a shape rule: over it the answer is 413
                            "description": f"at most {max_batch} images (MAX_BATCH); more is refused with 413",
                            "items": {"oneOf": [image, single]},
                        }
                    },
                },
            ]
        },
    }


def spec(settings) -> dict[str, Any]:
    """The OpenAPI document, with the configured limits filled in."""
    errors = {
        "400": _error("malformed request: bad JSON, wrong shape, invalid base64, corrupt image"),
        "404": _error("unknown model"),
        "413": _error(
            f"too large: body over {settings.max_content_length} bytes, image over "
            f"{settings.max_image_pixels} pixels, or batch over {settings.max_batch} images"
        ),
        "415": _error("unsupported content type or image format"),
        "422": _error(
            "`no_digit`: no digit found, the image is blank or nearly blank; `not_a_digit`: nothing in the "
            "(single) image looks like a digit to the model, with its guesses in `error.details` (`probabilities`, "
            "`confidence`, `digits`); in a batch such an image is an answer whose `number` is null; "
            f"`too_many_digits`: more than {settings.max_digits} digits (MAX_DIGITS) in one image"
        ),
        "429": _error("rate limit exceeded (only when RATE_LIMIT is set); see Retry-After"),
    }
    inside_errors = {
        "503": _error(
            "`inside_unavailable`: ?include=activations needs the model's LiteRT file and ai_edge_litert, which "
            "this server lacks (RUNTIME=savedmodel with a model exported without model.tflite); not temporary"
        )
    }
    ok = {
        "description": "the digits read (or, for 'images', the digits of each image, in order)",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"$ref": "#/components/schemas/Prediction"}, {"$ref": "#/components/schemas/Batch"}]
                }
            }
        },
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "digits",
            "version": "1.0.0",
            "description": "Handwritten digit and number recognition. Each image's digits are found left to right, "
            "and each goes through the MNIST recipe (crop, fit 20x20, centre by mass in 28x28) before the model.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Read the digit, or the number, in an image (or in each image of a batch)",
                    "parameters": [
                        {
                            "name": "model",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "a bundled model name (see /v1/models); default: the default model",
                        },
                        {
                            "name": "include",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": INCLUDE_PATTERN, "example": "input,saliency"},
                            "description": "a comma-separated list of what to add to each digit (and the first "
                            "digit's to each prediction): 'input', the preprocessed 28x28 image; 'activations', "
                            "every layer's activations; 'saliency', the pixels that drove the answer. Any other "
                            "name: 400 `bad_include`",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/JsonRequest"}},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {"image": {"type": "string", "format": "binary"}},
                                }
                            },
                            "image/png": binary,
                            "image/jpeg": binary,
                            "image/gif": binary,
                            "image/bmp": binary,
                            "image/webp": binary,
                            "image/tiff": binary,
                            "application/octet-stream": binary,
                        },
                    },
                    "responses": {"200": ok, **errors, **inside_errors},
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json("alive", "Health")}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: the default model is loaded and warmed up",
                    # No 503: the app exists only once create_app has loaded and warmed up the default model,
                    # which then stays. Before that nothing answers, which is what a probe reads as not ready.
                    "description": "Answers only once the default model is loaded and warmed up; "
                    "until then the server does not answer at all.",
                    "responses": {"200": _json("ready, with the default model", "Ready")},
                }
            },
            **openapi_corrections.paths(errors, admin=bool(settings.admin_token)),
            "/v1/models": {
                "get": {
                    "summary": "The available models, their versions, accuracy and input contract",
                    "responses": {"200": {"description": "model list"}},
                }
            },
            "/v1/models/{name}/templates": {
                "get": {
                    "summary": "Softmax regression's ten weight templates, read from the model's LiteRT file",
                    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _json("one 28x28 template and a bias per digit", "Templates"),
                        "404": _error(
                            "`unknown_model`; `no_templates`: the model has more than one layer from the 784 "
                            "pixels to the 10 digits (only softmax regression has templates)"
                        ),
                        **inside_errors,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                **_schemas(settings.max_batch, settings.max_digits),
                **_inside_schemas(),
                **openapi_corrections.schemas(),
            },
            **({"securitySchemes": openapi_corrections.SECURITY_SCHEMES} if settings.admin_token else {}),
        },
    }
