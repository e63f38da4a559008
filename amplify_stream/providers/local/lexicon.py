"""Word lists behind the heuristics. All lower case; all immutable."""

from __future__ import annotations

from types import MappingProxyType


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def alternation(words: frozenset[str]) -> str:
    """A regex alternation of ``words``, longest first: a word is never cut short by a
    shorter one it starts with."""
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


# Common function words: never names, never "repeated words" worth flagging, and the
# signal that a text is English (the English-only rewrite fixes depend on it).
STOPWORDS = _words(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    either even ever every few for from further had has have having he her here hers
    herself him himself his how if in into is it its itself just let like me more most
    much my myself neither no nor not now of off on once one only or other our ours out
    over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up upon very was we were what
    when where which while who whom why will with would yet you your yours yourself
    i'm i'll i've i'd it's that's there's he's she's don't didn't can't couldn't wasn't
    weren't won't wouldn't isn't aren't hasn't haven't hadn't shouldn't oh yes okay well"""
)
ENGLISH_MARKERS = STOPWORDS - {"a", "i"}

# Capitalized words that are not characters.
NOT_NAMES = _words(
    """monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december christmas easter god
    english french german spanish italian chinese japanese american british european
    mr mrs ms dr miss sir madam lady lord aunt uncle captain professor chapter part ok tv
    mom mum dad mother father grandma grandpa perhaps maybe hello hi hey sorry please
    thanks thank goodbye bye wow ah oh um uh hmm still later meanwhile suddenly finally
    instead somehow everyone everything someone something nobody nothing anyone anything
    together tonight today tomorrow yesterday"""
)
NAME_TITLES = _words("mr mrs ms dr miss sir lady lord aunt uncle captain professor")

# ---------------------------------------------------------------- dialogue
SPEECH_VERBS = _words(
    """said says say asked asks replied answered told called added whispered shouted
    yelled muttered murmured cried continued repeated admitted explained began insisted
    agreed warned promised suggested demanded pleaded begged screamed mumbled stammered
    stuttered"""
)
# Verbs of doing, not of speaking: nobody can smile a sentence.
ACTION_TAGS = _words(
    """smiled grinned laughed chuckled giggled sighed snorted smirked shrugged nodded
    frowned winked beamed scowled sneered"""
)
SAID_BOOKISMS = ACTION_TAGS | _words(
    """exclaimed ejaculated hissed growled snarled barked chortled opined queried retorted
    interjected expostulated breathed gasped spat purred roared bellowed intoned declared
    proclaimed remarked uttered vociferated cooed gushed quipped hollered enthused
    squealed"""
)
# Words ending in -ly that are not manner adverbs.
NOT_ADVERBS = _words(
    """only early family holy ugly silly lovely friendly lonely elderly belly jelly reply
    supply apply rely fly ally bully daily july italy emily lily molly holly sally billy
    kelly rally tally folly jolly hilly chilly curly surly burly costly deadly likely
    unlikely oily woolly wily gully bubbly comely homely monthly weekly yearly nightly
    hourly lowly"""
)

# ---------------------------------------------------------------- character
# Filter words and what to do instead.
FILTER_WORDS = MappingProxyType(
    {
        "felt": "give the sensation itself",
        "saw": "describe what is there",
        "heard": "give the sound itself",
        "noticed": "just describe the thing",
        "realized": "let the realization land as a thought or an act",
        "realised": "let the realisation land as a thought or an act",
        "watched": "describe what happens",
        # Not "seemed" (the house seemed empty: an appearance, not a filter) nor
        # "wondered" (a question the narration asks well enough).
    }
)
# What a filtered perception takes as its object: "saw the door", "heard her", "noticed
# that"; "felt sorry", "saw to it" are not perceptions put between reader and thing.
PERCEIVED_OPENERS = _words(
    "the a an his her their its this that these those some my your our him them"
)
# Subjects of a filter in close third person; "I saw" is a narrator's own voice.
FILTERING_SUBJECTS = _words("he she they i")
EMOTIONS = _words(
    """angry furious sad unhappy happy afraid scared frightened terrified nervous anxious
    worried excited jealous lonely ashamed embarrassed confused upset depressed bored
    annoyed irritated proud guilty hurt disappointed relieved surprised shocked grateful
    hopeful hopeless miserable joyful calm tense desperate devastated heartbroken elated
    frustrated overwhelmed furious glad content ecstatic envious"""
)
LINKING_VERBS = _words(
    "was were is are am felt feel feels feeling seemed seems looked looks became become "
    "becomes grew got gets"
)
DEGREE_WORDS = _words(
    "so very really quite too extremely incredibly rather more deeply utterly totally "
    "completely suddenly truly"
)

# ---------------------------------------------------------------- plot (prose and pacing)
BE_VERBS = _words("am is are was were be been being")
IRREGULAR_PARTICIPLES = _words(
    """arisen awoken beaten begun bent bitten blown broken brought built burnt bought
    caught chosen done drawn driven eaten fed fought found forbidden forgotten forgiven
    frozen given grown hung hidden held kept known laid led left lent lost made meant met
    paid ridden rung said seen sold sent shaken shot shown shut slain sought spent spoken
    spun stolen struck stung sworn swept taken taught thrown told torn thought understood
    woken won worn woven written"""
)
# -ed words that are adjectives (or emotions, flagged by character) rather than passives.
NOT_PARTICIPLES = EMOTIONS | _words(
    """bed red shed need seed feed weed speed bleed breed greed deed hundred sacred naked
    wicked beloved aged ragged rugged crooked jagged learned supposed used married tired
    interested pleased dressed engaged retired talented skilled gifted blessed cursed
    exhausted amazed amused alarmed puzzled concerned determined convinced prepared
    stunned thrilled delighted disgusted terrified horrified satisfied"""
)
WEAK_OPENINGS = frozenset(
    {
        ("there", "was"),
        ("there", "were"),
        ("there", "is"),
        ("there", "are"),
    }
)
# Adjectives that survive losing "very"/"really" with their meaning intact.
# What pads an adjective that has a stronger word of its own: the rule names that word.
PADDING = _words("very really extremely awfully terribly totally quite so")
STRONGER = MappingProxyType(
    {
        "big": "huge",
        "large": "enormous",
        "small": "tiny",
        "little": "tiny",
        "tired": "exhausted",
        "angry": "furious",
        "scared": "terrified",
        "afraid": "terrified",
        "frightened": "terrified",
        "happy": "elated",
        "sad": "miserable",
        "cold": "freezing",
        "hot": "scorching",
        "old": "ancient",
        "bad": "awful",
        "good": "excellent",
        "hungry": "starving",
        "thirsty": "parched",
        "quiet": "hushed",
        "loud": "deafening",
        "fast": "swift",
        "quick": "swift",
        "slow": "sluggish",
        "pretty": "lovely",
        "beautiful": "stunning",
        "ugly": "hideous",
        "dirty": "filthy",
        "wet": "soaked",
        "dry": "parched",
        "smart": "brilliant",
        "clever": "brilliant",
        "rich": "wealthy",
        "poor": "destitute",
        "tall": "towering",
        "worried": "anxious",
        "surprised": "astonished",
        "bright": "dazzling",
        "dark": "pitch-black",
        "important": "vital",
        "strong": "mighty",
        "weak": "feeble",
        "funny": "hilarious",
        "boring": "tedious",
        "sure": "certain",
        "hard": "grueling",
        "easy": "effortless",
        "excited": "thrilled",
        "upset": "distraught",
        "expensive": "costly",
    }
)
FILLER_WORDS = _words("just")
# Acts of a hand on a thing: done in a scene, by someone in it ("the pistol was lowered").
HAND_ACTS = _words(
    """opened closed shut unlocked locked lowered raised lifted snuffed lit set placed laid
    poured trimmed pulled pushed dropped thrown handed passed drawn wiped folded torn tied
    untied loaded fired emptied filled moved struck slammed unbolted bolted fastened
    unfastened turned rolled"""
)
# What makes a passive about when, not who ("was tarred the summer after", "in 1859").
WHEN_WORDS = _words(
    """ago years year century centuries decade since sometime summer winter spring autumn
    during once before after until age era reign time times days"""
)
# Long words too everyday to echo: a close repeat is of a word the reader remembers.
COMMON_LONG_WORDS = _words(
    """himself herself itself themselves yourself ourselves myself something nothing
    anything everything somebody nobody anybody everybody someone another against
    between because without through thought though although already perhaps whether
    morning evening whole moment presently together however brought looking seemed
    towards another further rather having another little people thinking nothing"""
)
# "not very good" is not "not good"; "the very man" is not "the man".
KEEP_INTENSIFIER_AFTER = _words(
    "not never n't the this that these those so too how no hardly barely isn't wasn't "
    "aren't weren't don't didn't doesn't"
)

# ---------------------------------------------------------------- setting
SENSES = MappingProxyType(
    {
        "sight": _words(
            """bright dark glow gleam glint shimmer flicker shadow shade light colour color
            red blue green yellow orange purple grey gray black white golden silver pale
            sparkle glitter blaze flash dim haze fog mist sunlight moonlight lamplight shone
            glare"""
        ),
        "sound": _words(
            """creak whisper hum roar silence silent ring buzz bang echo rustle click
            thunder crash clatter thud rumble chirp howl hiss murmur crackle drip tick
            squeak scream shout sing song music noise quiet loud footstep knock whistle
            clang rang bell"""
        ),
        "smell": _words(
            """smell scent odor odour stink stench perfume smoke musty fragrant fragrance
            reek aroma whiff rotten mildew smelt"""
        ),
        "touch": _words(
            """rough smooth cold warm damp wet sticky soft prickly icy heat chill texture
            slick slimy coarse silky velvet sharp numb freezing burning sweat breeze"""
        ),
        "taste": _words(
            """taste bitter sweet sour salty savory savoury metallic tang tangy bland
            spicy honey sugar salt"""
        ),
    }
)
WEATHER_WORDS = _words(
    """rain snow wind storm sleet hail drizzle frost sun sunshine cloud overcast downpour
    gale blizzard humid muggy weather thaw"""
)
PLACE_NOUNS = _words(
    """room kitchen bedroom hall hallway street road lane alley forest wood woods house
    home city town village river lake sea ocean beach shore station office church market
    field hill mountain valley garden park yard porch attic cellar basement bridge harbor
    harbour ship car bus train platform school classroom library shop store cafe bar pub
    tavern inn castle tower cave desert island farm barn square corridor stairs window
    door doorway roof shed"""
)
# Before a capitalized word these mark a place ("in Lisbon"); "at" and "to" take people too.
PLACE_NAME_PREPOSITIONS = _words("in into inside outside across through throughout near")
TIME_WORDS = _words(
    """morning afternoon evening night midnight noon dawn dusk sunrise sunset twilight
    winter summer spring autumn fall yesterday tomorrow today tonight hour hours minute
    minutes o'clock week weeks month year years monday tuesday wednesday thursday friday
    saturday sunday later earlier meanwhile decade century season"""
)

# ---------------------------------------------------------------- rewrite
# Words whose doubling ("the the") is always a slip; "had had" and "that that" are English.
# Words that never stand twice in a row in good prose ("had had", "that that", "in in" do).
DOUBLING_SLIPS = _words("the a an of and to")
