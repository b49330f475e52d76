"""The contact rule (the sound decides between the objects at the fingertips) and the object sound
memory (lone touches remembered, recalled at an ambiguous one) on constructed candidates."""
import numpy as np

from hearing_hands_ros.models.look_match import ContactRule
from hearing_hands_ros.models.sound_memory import MemoryConfig, SoundMemory

L = 32
RNG = np.random.default_rng(0)
LOOK_A, LOOK_B, LOOK_C = RNG.normal(0, 1, 31), RNG.normal(0, 1, 31), RNG.normal(0, 1, 31)
SOUND_A, SOUND_B = RNG.normal(0, 1, 200), RNG.normal(0, 1, 200)


def _noisy(x, s=0.2):
    return x + RNG.normal(0, s, x.shape)


def _box(x0, x1, y0=10, y1=20):
    m = np.zeros((L, L), bool)
    m[y0:y1, x0:x1] = True
    return m


def _cands(scores=(0.6, 0.3, 0.1)):
    """Two objects either side of the contact point (16, 8) and one far away."""
    masks = [_box(4, 14), _box(18, 28), _box(0, 6, 26, 32)]
    return [{'slot': i + 1, 'mask': m, 'score': s} for i, (m, s) in enumerate(zip(masks, scores))]


UV = np.array([16.0, 8.0])
LOOKS = np.stack([LOOK_A, LOOK_B, LOOK_C])


def test_contact_set_by_nearest_pixel_and_radius():
    rule = ContactRule(radius_px=4.0)
    assert list(rule.contact_set(_cands(), UV)) == [0, 1]          # 2.6 and 2.6 px, not 20 px
    assert list(ContactRule(radius_px=2.0).contact_set(_cands(), UV)) == []


def test_inside_the_set_the_look_decides_not_the_slots():
    rule = ContactRule(radius_px=4.0, weight=1.0)
    logits = np.array([-2.0, 3.0, 0.0])        # the sound goes with object 2's look
    out = rule.apply(_cands(), logits, 0.25, UV, LOOKS)
    assert out[0]['slot'] == 2 and out[0]['decided_by'] == 'look'
    assert [c['contact'] for c in sorted(out, key=lambda c: c['slot'])] == [True, True, False]
    assert abs(sum(c['score'] for c in out) - 1.0) < 1e-9
    # outside the set the probability is the slots' and look match's, unchanged by the rule
    far = [c for c in out if c['slot'] == 3][0]['score']
    from hearing_hands_ros.models.look_match import rescore
    assert abs(far - [c for c in rescore(_cands(), logits, 0.25) if c['slot'] == 3][0]['score']) < 1e-9


def test_one_candidate_at_the_fingertips_is_left_to_the_slots_and_remembered():
    rule = ContactRule(radius_px=4.0)
    cands = [c for c in _cands() if c['slot'] != 2]
    mem = SoundMemory()
    out = rule.apply(cands, np.array([0.0, 5.0]), 0.25, UV, LOOKS[[0, 2]], mem, SOUND_A)
    assert out[0]['slot'] == 1 and out[0]['decided_by'] == 'slots'
    assert mem.observe(out, SOUND_A) and len(mem) == 1
    both = rule.apply(_cands(), np.zeros(3), 0.25, UV, LOOKS)
    assert not mem.observe(both, SOUND_A) and len(mem) == 1      # two at the fingertips: not alone


def test_memory_names_the_object_whose_remembered_sound_matches():
    mem = SoundMemory()
    for _ in range(2):
        mem.remember(_noisy(LOOK_A), _noisy(SOUND_A))
        mem.remember(_noisy(LOOK_B), _noisy(SOUND_B))
    for sound, want in ((SOUND_A, 0), (SOUND_B, 1)):
        p = mem.probabilities(LOOKS[:2], _noisy(sound, 0.5))
        assert p is not None and p.argmax() == want and p[want] > 0.9
    # the rule uses it against a look match that says the opposite
    out = ContactRule(radius_px=4.0).apply(_cands(), np.array([5.0, -5.0, 0.0]), 0.25, UV, LOOKS,
                                           mem, _noisy(SOUND_B, 0.5))
    assert out[0]['slot'] == 2 and out[0]['decided_by'] == 'memory'


def test_memory_stays_out_unless_it_knows_every_candidate():
    mem = SoundMemory()
    mem.remember(LOOK_A, SOUND_A)
    assert mem.recall(LOOKS[:2], SOUND_A) is None            # nothing of object B
    out = ContactRule(radius_px=4.0).apply(_cands(), np.array([-1.0, 1.0, 0.0]), 0.25, UV, LOOKS,
                                           mem, SOUND_A)
    assert out[0]['decided_by'] == 'look' and out[0]['slot'] == 2
    assert SoundMemory().recall(LOOKS[:2], SOUND_A) is None  # empty


def test_an_entry_that_looks_like_neither_candidate_does_not_vote():
    mem = SoundMemory(MemoryConfig(identity_ratio=0.7))
    mem.remember(LOOK_A, SOUND_A)
    mem.remember(LOOK_B, SOUND_B)
    mem.remember(0.5 * (LOOK_A + LOOK_B), SOUND_A)          # halfway: no clear owner
    sim = mem.recall(LOOKS[:2], SOUND_A)
    assert sim is not None and sim[1] < 0.5                 # B's own sound only, not A's


def test_memory_is_bounded_and_cleared():
    mem = SoundMemory(MemoryConfig(size=3))
    for _ in range(5):
        mem.remember(LOOK_A, SOUND_A)
    assert len(mem) == 3
    mem.clear()
    assert len(mem) == 0
