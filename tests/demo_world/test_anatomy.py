"""The virtual subjects' anatomy (issue 16): a drawn subject's areas stay apart, as one person's
category-selective areas are disjoint patches."""

import numpy as np

from training.demo_world.anatomy import (AREA_CENTRES, MIN_AREA_SEPARATION_MM, ROI_NAMES, SubjectTraits,
                                         closest_areas)


def test_the_published_arrangement_keeps_its_areas_apart():
    distance, a, b, hemi = closest_areas({})
    assert distance >= MIN_AREA_SEPARATION_MM, (a, b, hemi)


def test_the_check_sees_two_areas_drawn_onto_one_spot():
    # last round's unconstrained draw for the study's subj03: hV4 8 mm lateral, onto the occipital face area
    distance, a, b, _ = closest_areas({"hV4": (8.0, 0.3, -3.7), "OFA": (-1.8, -1.4, -3.4)})
    assert distance < 3.0 and {a, b} == {"hV4", "OFA"}


def test_drawn_subjects_keep_their_areas_apart_for_any_seed():
    shifted = 0
    for seed in range(25):
        traits = SubjectTraits.draw(seed)
        distance, a, b, hemi = closest_areas(traits.centre_shift_mm)
        assert distance >= MIN_AREA_SEPARATION_MM, (seed, a, b, hemi, distance)
        assert set(traits.centre_shift_mm) == {area for _, area, *_ in AREA_CENTRES}
        assert all(abs(x) <= 8.0 for shift in traits.centre_shift_mm.values() for x in shift)
        shifted += any(np.linalg.norm(s) > 4.0 for s in traits.centre_shift_mm.values())
    assert shifted >= 20  # the constraint keeps the jitter: areas still move by several millimetres


def test_a_drawn_subjects_rois_are_disjoint_and_each_holds_its_area():
    from training.demo_world.subject import VirtualSubject

    subject = VirtualSubject.create(1002, SubjectTraits.draw(1002))
    voxels = [set(subject.rois[name]["voxels"]) for name in ROI_NAMES]
    assert all(voxels) and sum(map(len, voxels)) == len(set().union(*voxels))
