"""Face stage: detect → landmarks → align every modality with one transform → quality
checks → modality health. Produces :class:`~service.face.types.FaceCandidate` objects."""
