"""Materials of the sound world: elastic, damping, surface and contact constants, and appearance.

Each `Material` carries what two consumers need:

* the physics (`sim/world.py`, MuJoCo) reads `density` [kg/m^3], `friction` (sliding coefficient)
  and `restitution`;
* the contact-sound synthesis (`sim/modal.py`) reads the elastic constants (mode frequencies scale
  with the plate wave speed sqrt(E / (rho (1 - nu^2)))), the damping model, the surface roughness
  (friction noise while sliding) and the Hertz contact modulus (duration of an impact pulse).

Damping model (per mode of frequency f, amplitude decay rate in 1/s):

    decay(f) = alpha + pi * f * eta

`eta` is the structural (hysteretic) loss factor, eta = 2 zeta, so decay = zeta omega = pi f eta;
`alpha` is a frequency-independent term lumping radiation and support losses (the object resting
on a table, held by a gripper). This is the loss-factor form of the Rayleigh-style damping used for
modal sound by O'Brien, Shen & Gatchalian (SCA 2002) and fitted to recordings by Ren, Yeh & Lin
("Example-guided physically based modal sound synthesis", ACM TOG 2013), whose viscous form is
alpha + beta omega^2. Both give the strongest perceptual material cue, a decay rate rising with
frequency (Klatzky, Pai & Krotkov, Presence 2000; van den Doel & Pai 1998).

Sources of the constants (rounded; typical mid-range values of the cited ranges):

* [A]  M. F. Ashby, "Materials Selection in Mechanical Design", 4th ed. (2011): density, Young's
       modulus, Poisson ratio (material property charts and data tables).
* [GA] L. J. Gibson & M. F. Ashby, "Cellular Solids", 2nd ed. (1997): foams.
* [C]  L. Cremer, M. Heckl & B. A. T. Petersson, "Structure-Borne Sound", 3rd ed. (2005),
       table of loss factors: steel/aluminium 1e-4..6e-4, glass 6e-4..2e-3, oak 8e-3..1e-2,
       plywood 1e-2..1.3e-2, plexiglass 2e-2..4e-2, cork 0.13..0.17, rubber 0.1..1.
       Assembled objects (joints, supports, coatings) are damped more than the bare material;
       where `eta` exceeds the cited material range, the comment says it is an effective value.
* [K]  L. E. Kinsler, A. R. Frey, A. B. Coppens & J. V. Sanders, "Fundamentals of Acoustics",
       4th ed. (2000): bar/plate/ring vibration, air constants, radiation.
* [F]  friction: engineering handbook tables of dry sliding coefficients (e.g. Marks' Standard
       Handbook for Mechanical Engineers); restitution: typical drop-test values; these are
       rough by nature and are tuned for stable MuJoCo contacts.
* Surface roughness Ra: machining/finishing tables (ISO 1302 roughness grades); roughness
  wavelength (dominant asperity spacing) is an effective value chosen per surface type.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['Material', 'MATERIALS', 'OBJECT_MATERIALS', 'get_material',
           'appearance_distribution', 'sample_appearance', 'TEXTURES']


@dataclass(frozen=True)
class Material:
    """Physical constants of one material (SI units)."""

    name: str
    density: float          # rho [kg/m^3] (bulk; effective for corrugated board / foams / fabric)
    youngs: float           # E [Pa]
    poisson: float          # nu [-]
    loss_factor: float      # eta [-]: decay(f) += pi * f * eta
    alpha: float            # [1/s] frequency-independent decay (radiation + support losses)
    roughness: float        # Ra [m], arithmetic mean surface roughness
    roughness_wavelength: float  # [m] dominant asperity spacing: friction-noise centre = v / this
    friction: float         # sliding friction coefficient (MuJoCo `friction[0]`)
    restitution: float      # coefficient of restitution in [0, 1]
    wall: float             # [m] typical wall thickness of hollow objects made of it
    hollow: bool            # boxes/cylinders/spheres of this material are thin-walled containers
    radiation: float = 1.0  # fraction of surface velocity that pumps air (< 1: open-cell, porous)

    @property
    def plate_speed(self) -> float:
        """Quasi-longitudinal plate wave speed sqrt(E / (rho (1 - nu^2))) [m/s] ([K] ch. 3)."""
        return float(np.sqrt(self.youngs / (self.density * (1.0 - self.poisson ** 2))))

    @property
    def bar_speed(self) -> float:
        """Longitudinal bar wave speed sqrt(E / rho) [m/s]."""
        return float(np.sqrt(self.youngs / self.density))

    @property
    def contact_modulus(self) -> float:
        """Hertz contact stiffness term E / (1 - nu^2) [Pa]; the pair modulus E* is
        1 / (1/Ec_1 + 1/Ec_2) (K. L. Johnson, "Contact Mechanics", 1985, ch. 4)."""
        return self.youngs / (1.0 - self.poisson ** 2)

    def decay(self, freq) -> np.ndarray:
        """Amplitude decay rate [1/s] of modes at `freq` [Hz]: alpha + pi f eta."""
        return self.alpha + np.pi * np.asarray(freq, dtype=float) * self.loss_factor


MATERIALS: dict[str, Material] = {
    # Hardwood (maple/beech/oak), along the grain. rho, E [A]: hardwoods 600-800 kg/m^3,
    # 9-16 GPa; eta [C] oak 8e-3..1e-2 (we take 1.2e-2, a small effective excess for glue
    # joints / finish). Planed wood Ra ~ 3-12 um, grain spacing ~0.3-1 mm. Friction wood on
    # wood 0.25-0.5 [F].
    'wood': Material('wood', 700.0, 11e9, 0.35, 1.2e-2, 8.0, 6e-6, 5e-4, 0.45, 0.5, 4e-3, False),
    # Steel (stainless/mild). rho 7850, E 200 GPa, nu 0.29 [A]; material eta 1e-4..6e-4 [C];
    # 5e-4 with alpha = 2/s gives T60 ~ 1-3 s for a resting cup. Machined/drawn Ra ~ 0.8 um.
    'metal': Material('metal', 7850.0, 200e9, 0.29, 5e-4, 2.0, 0.8e-6, 5e-5, 0.4, 0.6, 8e-4, True),
    # Soda-lime glass. rho 2500, E 70 GPa, nu 0.22 [A]; eta 6e-4..2e-3 [C]. Float glass is
    # optically smooth (Ra < 0.05 um). Glass on wood friction ~0.3-0.4 [F].
    'glass': Material('glass', 2500.0, 70e9, 0.22, 1.5e-3, 3.0, 0.05e-6, 2e-5, 0.35, 0.6, 2.5e-3,
                      True),
    # Glazed porcelain/stoneware. rho 2300-2500, E 60-100 GPa, nu ~0.22 [A] (technical
    # ceramics); eta: not in [C]'s table; 4e-3 is an effective value (glaze + porous body),
    # giving the shorter, "duller" ring of mugs and plates compared to glass. Glazed Ra ~0.3 um
    # (unglazed foot ring rougher).
    'ceramic': Material('ceramic', 2400.0, 70e9, 0.22, 4e-3, 6.0, 0.3e-6, 5e-5, 0.45, 0.55, 4e-3,
                        True),
    # ABS / polypropylene. rho 900-1100, E 1.1-2.9 GPa, nu 0.35-0.4 [A]; eta: plexiglass
    # 2e-2..4e-2 [C], ABS similar. Moulded Ra ~ 1 um.
    'plastic': Material('plastic', 1050.0, 2.3e9, 0.37, 3e-2, 10.0, 1e-6, 1e-4, 0.35, 0.5, 1.5e-3,
                        True),
    # Corrugated board / paperboard. Paperboard rho ~700 kg/m^3, E 2-5 GPa in plane [A];
    # corrugated board is a sandwich: effective rho 150, E 0.6 GPa (bending-equivalent
    # homogenised values). eta 6e-2 is effective (air pumping in the flutes, fibre friction;
    # not in [C]). Kraft liner Ra ~ 4 um, ~1 mm fibre features.
    'cardboard': Material('cardboard', 150.0, 0.6e9, 0.3, 6e-2, 25.0, 4e-6, 1e-3, 0.5, 0.25, 3e-3,
                          True),
    # Polymer foam (semi-rigid PU / packaging foam). rho 30-60 kg/m^3, E 0.1-10 MPa [GA].
    # eta 0.3 (cork 0.13-0.17, rubber 0.1-1 [C]); alpha 150/s (viscous air flow in the cells).
    # Open-cell porous skeletons move air through their pores instead of compressing it, so they
    # radiate poorly (J. F. Allard & N. Atalla, "Propagation of Sound in Porous Media", 2009):
    # radiation 0.05 is an effective value.
    'foam': Material('foam', 40.0, 1e6, 0.3, 0.3, 150.0, 50e-6, 2e-3, 0.8, 0.1, 1e-2, False, 0.05),
    # Textile (folded cloth, bean bag): effective bulk rho 200, E 0.3 MPa (compressive modulus of
    # a fibre assembly; van Wyk's theory gives 0.01-1 MPa); eta 0.5, strongly damped.
    # Porous like foam: radiation 0.03 (effective).
    'fabric': Material('fabric', 200.0, 3e5, 0.3, 0.5, 250.0, 100e-6, 1e-3, 0.7, 0.05, 5e-3, False,
                       0.03),
    # Table top: MDF / particleboard with laminate. rho 700-800, E 2.5-4.5 GPa [A];
    # eta 2e-2 (plywood 1e-2..1.3e-2 [C]; + legs and joints, effective). Laminate Ra ~ 3 um.
    'table': Material('table', 750.0, 4e9, 0.3, 2e-2, 5.0, 3e-6, 3e-4, 0.5, 0.5, 2.5e-2, False),
    # Gripper finger: aluminium 6061. rho 2700, E 69 GPa, nu 0.33 [A]; material eta ~1e-4 [C];
    # 5e-3 / alpha 20 are effective (bolted to the actuator, padded mounting). Milled Ra 1.6 um.
    'gripper': Material('gripper', 2700.0, 69e9, 0.33, 5e-3, 20.0, 1.6e-6, 1e-4, 0.6, 0.5, 5e-3,
                        False),
}

#: Materials an object in a scene can be made of (the table and the gripper are fixed).
OBJECT_MATERIALS: list[str] = ['wood', 'metal', 'glass', 'ceramic', 'plastic', 'cardboard', 'foam',
                               'fabric']


def get_material(name: str | Material) -> Material:
    """Look up a material by name (a `Material` passes through)."""
    if isinstance(name, Material):
        return name
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f'unknown material {name!r}; known: {sorted(MATERIALS)}') from None


# --------------------------------------------------------------------------------------------
# Appearance. Each material usually has its typical look (brown wood grain, grey metal, tinted
# translucent glass, white ceramic, brightly coloured plastic, brown cardboard, speckled foam,
# patterned fabric), as objects do; about a quarter of the time it is painted/printed in a colour
# family that other materials use too, so the look is informative but never decisive, like the
# sound. Texture names are abstract; the scene builder maps them to MuJoCo textures:
#   'plain' (flat colour), 'grain' (wood-like stripes), 'checker', 'gradient', 'noise'
#   (speckle / random marks), 'stripes'.
# --------------------------------------------------------------------------------------------
TEXTURES = ('plain', 'grain', 'checker', 'gradient', 'noise', 'stripes')

# family -> (rgb_mean (3,), rgb_std (3,), alpha range)
_FAMILIES: dict[str, tuple[tuple, tuple, tuple]] = {
    'brown': ((0.55, 0.38, 0.22), (0.10, 0.08, 0.06), (1.0, 1.0)),
    'white': ((0.88, 0.87, 0.84), (0.05, 0.05, 0.06), (1.0, 1.0)),
    'grey': ((0.60, 0.61, 0.63), (0.10, 0.10, 0.10), (1.0, 1.0)),
    'dark': ((0.15, 0.15, 0.16), (0.05, 0.05, 0.05), (1.0, 1.0)),
    'red': ((0.78, 0.18, 0.15), (0.08, 0.06, 0.06), (1.0, 1.0)),
    'blue': ((0.18, 0.35, 0.75), (0.06, 0.08, 0.10), (1.0, 1.0)),
    'green': ((0.25, 0.60, 0.30), (0.08, 0.10, 0.08), (1.0, 1.0)),
    'yellow': ((0.90, 0.78, 0.25), (0.06, 0.07, 0.08), (1.0, 1.0)),
    'tinted': ((0.62, 0.72, 0.70), (0.12, 0.12, 0.12), (0.55, 0.85)),
}

# material -> ({family: weight}, textures): the first family is the typical look; every other
# family is shared by at least two materials.
_APPEARANCE: dict[str, tuple[dict[str, float], tuple[str, ...]]] = {
    'wood':      ({'brown': 0.75, 'yellow': 0.1, 'dark': 0.1, 'red': 0.05}, ('grain',)),
    'metal':     ({'grey': 0.75, 'dark': 0.1, 'red': 0.08, 'blue': 0.07}, ('plain', 'gradient')),
    'glass':     ({'tinted': 0.75, 'green': 0.1, 'blue': 0.1, 'white': 0.05}, ('plain',)),
    'ceramic':   ({'white': 0.75, 'blue': 0.1, 'red': 0.08, 'yellow': 0.07}, ('plain', 'gradient')),
    'plastic':   ({'red': 0.3, 'blue': 0.25, 'yellow': 0.2, 'green': 0.15, 'tinted': 0.1},
                  ('plain', 'stripes')),
    'cardboard': ({'brown': 0.75, 'white': 0.15, 'grey': 0.1}, ('plain', 'noise')),
    'foam':      ({'yellow': 0.4, 'grey': 0.25, 'green': 0.2, 'dark': 0.15}, ('noise',)),
    'fabric':    ({'blue': 0.3, 'red': 0.25, 'green': 0.25, 'dark': 0.2}, ('checker', 'stripes')),
    'table':     ({'brown': 0.6, 'grey': 0.2, 'white': 0.2}, ('grain', 'plain', 'noise')),
    'gripper':   ({'grey': 0.6, 'dark': 0.4}, ('plain',)),
}


# Surface finish: physical, so it is informative but not decisive (ranges overlap). Specular and
# shininess of MuJoCo's Phong model, reflectance of its mirror term. Polished metal and glass are
# glossy, glazed ceramic and plastic satin, wood/cardboard/foam/fabric matte; painted metal and
# matte-finished plastic fall into the middle.
# material -> ((specular lo, hi), (shininess lo, hi), (reflectance lo, hi))
_FINISH: dict[str, tuple[tuple, tuple, tuple]] = {
    'metal':     ((0.5, 1.0), (0.5, 1.0), (0.05, 0.35)),
    'glass':     ((0.6, 1.0), (0.7, 1.0), (0.05, 0.25)),
    'ceramic':   ((0.35, 0.8), (0.4, 0.9), (0.0, 0.12)),
    'plastic':   ((0.2, 0.7), (0.2, 0.8), (0.0, 0.08)),
    'wood':      ((0.05, 0.35), (0.05, 0.4), (0.0, 0.03)),
    'cardboard': ((0.0, 0.15), (0.0, 0.2), (0.0, 0.0)),
    'foam':      ((0.0, 0.1), (0.0, 0.15), (0.0, 0.0)),
    'fabric':    ((0.0, 0.1), (0.0, 0.15), (0.0, 0.0)),
    'table':     ((0.05, 0.3), (0.05, 0.3), (0.0, 0.0)),
    'gripper':   ((0.4, 0.7), (0.4, 0.7), (0.0, 0.1)),
}


def appearance_distribution(material: str) -> list[tuple[float, tuple, tuple, tuple, tuple]]:
    """The colour mixture of a material: list of (weight, rgb_mean, rgb_std, texture_names,
    alpha_range), weights summing to 1."""
    fams, tex = _APPEARANCE[get_material(material).name]
    total = sum(fams.values())
    return [(w / total, *_FAMILIES[f][:2], tex, _FAMILIES[f][2]) for f, w in fams.items()]


def sample_appearance(material: str, rng: np.random.Generator) -> dict:
    """Draw an appearance: dict(rgba=[r, g, b, a] floats in [0, 1], texture=str, family=str,
    specular, shininess, reflectance floats in [0, 1] (surface finish))."""
    name = get_material(material).name
    fams, tex = _APPEARANCE[name]
    w = np.array(list(fams.values()))
    fam = list(fams)[int(rng.choice(len(fams), p=w / w.sum()))]
    mean, std, (a0, a1) = _FAMILIES[fam]
    rgb = np.clip(rng.normal(mean, std), 0.0, 1.0)
    alpha = float(rng.uniform(a0, a1)) if a1 > a0 else a0
    spec, shin, refl = (float(rng.uniform(lo, hi)) for lo, hi in _FINISH[name])
    return {'rgba': [float(c) for c in rgb] + [alpha], 'texture': str(rng.choice(tex)),
            'family': fam, 'specular': spec, 'shininess': shin, 'reflectance': refl}
