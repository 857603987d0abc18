"""The messages the pages' scripts show, translated on the server: each page carries them as JSON in its body's
`data-messages` (data, not code: the CSP allows no inline script), read by the script's `t(key)`.

`{name}` in a message is a parameter the script fills in. To add one: a key here with `_("English text")`, then
`make translations` and its Portuguese in service/translations/pt_BR/LC_MESSAGES/messages.po (see the Makefile).
"""

from __future__ import annotations

from service.i18n import DEFAULT, get_locale
from service.i18n import gettext as _


def api_errors() -> dict[str, str]:
    """What an API error code means, for a page that is not in English: `error.<code>` -> its message.

    On an English page a code's own message, English and more precise, is shown as the API sent it.
    """
    if get_locale() == DEFAULT:
        return {}
    return {
        "error.bad_request": _("the request was not understood"),
        "error.empty_body": _("the request was empty"),
        "error.malformed_json": _("the request was not understood"),
        "error.invalid_base64": _("the image data was damaged on the way"),
        "error.invalid_image": _("the image is damaged or incomplete"),
        "error.unsupported_media_type": _("it is not a PNG, JPEG, GIF, BMP, WebP or TIFF image"),
        "error.too_large": _("the image is too large"),
        "error.request_timeout": _("the image arrived too slowly"),
        "error.too_many_digits": _("write fewer digits at a time"),
        "error.unknown_model": _("that model is not available"),
        "error.rate_limited": _("too many requests; wait a moment and try again"),
        "error.database_unavailable": _("the corrections database is unavailable; try again later"),
        "error.unavailable": _("the service is unavailable; try again later"),
        "error.internal_error": _("the server had a problem"),
        "error.unauthorized": _("the admin token is wrong"),
        "error.not_found": _("not found"),
    }


def page() -> dict[str, str]:
    """The drawing page's messages (service/static/app.js)."""
    return {
        "hint": _("Draw a digit or a number, or upload a picture of one."),
        "confident": _("{percent} confident"),
        "notADigitGuess": _("not a digit (best guess {digit}, {percent})"),
        "digitOf": _("Digit {index} of {count}: {confidence}"),
        "probabilities": _("Probabilities"),
        "probabilitiesOf": _("Probabilities of digit {index}"),
        "digitCount": _("{count} digits"),
        "modelName": _("Model: {name} v{version}"),
        "predictionFor": _("Prediction for “{file}”."),
        "chooseDigit": _("{count} digits: choose one to see its probabilities."),
        "refused": _("That doesn't look like a digit. The model's guesses are greyed out."),
        "digitRefused": _("Digit {index} doesn't look like a digit."),
        "unsure": _("Not sure: try writing the digit larger and clearer."),
        "unsureOf": _("Not sure of digit {index}: try writing it larger and clearer."),
        "offline": _("Could not reach the server. Check your connection and try again."),
        "noDigitUpload": _("No digit found in that image. Try a clearer picture of a digit or a number."),
        "noDigitYet": _("No digit yet: draw a digit or a number, large and clear."),
        "tooManyDigits": _("Too many digits: {message}"),
        "uploadFailed": _("That image could not be read: {message}"),
        "predictionFailed": _("Prediction failed: {message}"),
        "notAnImage": _("“{file}” is not an image. Choose a PNG, JPEG or other picture."),
        "wrong": _("Wrong? It was:"),
        "wrongDigit": _("Wrong? Digit {index} was:"),
        "notADigit": _("not a digit"),
        "quoted": _("“{label}”"),
        "thanks": _("Thank you! Saved as {label}; it is reviewed before the model learns from it."),
        "sending": _("Sending…"),
        "unreachable": _("could not reach the server"),
        "notSaved": _("Not saved: {reason}. Please try again."),
        **panels(),
        **api_errors(),
    }


def panels() -> dict[str, str]:
    """The drawing page's "Look inside" and "Compare models" panels (service/static/inside.js, compare.js)."""
    return {
        "inside.input": _("Input"),
        "inside.inputSize": _("28×28 = 784 pixels"),
        "inside.inputAlt": _("The 28 by 28 pixel image the model reads"),
        "inside.saliency": _(
            "Saliency by occlusion ({patch}×{patch} patches): hiding the red pixels makes the model less sure of "
            "its answer {digit}, hiding the blue ones more sure."
        ),
        "inside.dense": _("{name}: {units} units, {active} active, strongest {top}"),
        "inside.conv": _("{name}: {maps} feature maps of {h}×{w}, strongest {top}"),
        "inside.answer": _("The answer: {digit}, {percent}"),
        "inside.output": _("output"),
        "inside.outputs": _("The ten outputs, one per digit"),
        "inside.weights": _("weights"),
        "inside.templates": _("10 templates of 784 weights"),
        "inside.templateOf": _("Weights of the digit {digit}"),
        "inside.refused": _("Nothing to show: this is not a digit to the model."),
        "inside.noLayers": _("This answer came without the layers."),
        "inside.modelDigit": _("{model}, digit {index} of {count}"),
        "inside.loading": _("Looking inside…"),
        "inside.failed": _("The layers could not be loaded."),
        "compare.softmax": _("Softmax regression"),
        "compare.mlp": _("Perceptron"),
        "compare.cnn": _("Convolutional network"),
        "compare.softmaxWhat": _(
            "One layer: each of the 10 outputs adds up the 784 pixels, each times its own weight."
        ),
        "compare.mlpWhat": _("784-512-512-10: two hidden layers of 512 neurons between the pixels and the answer."),
        "compare.cnnWhat": _(
            "Small filters slide over the image to find strokes and shapes; dense layers then read them."
        ),
        "compare.weights": _("{count} weights"),
        "compare.accuracy": _("{percent} right on the MNIST test set"),
        "compare.noAnswer": _("No answer"),
        "compare.confidentOf": _("digit {index}: {percent} confident"),
        "compare.empty": _("Draw a digit or a number to compare the models."),
        "compare.offline": _("Could not reach the server."),
    }


def admin() -> dict[str, str]:
    """The corrections review page's messages (service/static/admin.js); status.<status> names a review status.

    The counts are "label: number" (no "1 pendentes"): the scripts' messages have no plural forms.
    """
    return {
        "status.pending": _("pending"),
        "status.accepted": _("accepted"),
        "status.rejected": _("rejected"),
        "notADigit": _("not a digit"),
        "noDigit": _("no digit"),
        "asDrawn": _("Correction {id} as drawn"),
        "modelSaw": _("What the model saw"),
        "unavailable": _("{alt} (not available)"),
        "itWas": _("It was: {label}"),
        "modelSaid": _("model said {said} ({name} v{version})"),
        "accept": _("Accept"),
        "reject": _("Reject"),
        "reviewed": _("Correction {id}: {status}."),
        "notReviewed": _("Could not review correction {id}: {reason}"),
        "count.pending": _("Pending: {count}; shown: {shown}."),
        "count.accepted": _("Accepted: {count}; shown: {shown}."),
        "count.rejected": _("Rejected: {count}; shown: {shown}."),
        "count.all": _("In all: {count}; shown: {shown}."),
        "notLoaded": _("Could not load corrections: {reason}"),
        **api_errors(),
    }
