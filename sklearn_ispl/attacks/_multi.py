"""Several backdoor attacks on one training set, on disjoint images."""

import numpy as np
from sklearn.utils import check_random_state

from ._base import _BaseAttack, _is_int

__all__ = ["MultiAttack"]


class MultiAttack:
    """Poison one training set with several backdoor attacks at once.

    The attacks run in the order given, each on images that no earlier
    attack poisoned: attack ``k`` poisons ``round(eps_k * n_source_k)``
    images (its count on its own, from its source class in the clean
    ``y``), drawn by its own ``random_state`` among the images of its source
    class that are still clean, and relabels them as its target.

    Parameters
    ----------
    attacks : list of attack
        The attacks: instances of :class:`BackdoorAttack`,
        :class:`BlendedBackdoorAttack` or :class:`VaryingBackdoorAttack`, at
        least one. Their ``random_state`` seeds their draws; the multi-attack
        has no randomness of its own.

    See Also
    --------
    make_multi_scenario : Draw random attacks on different class pairs.

    Notes
    -----
    The constructor only stores the parameters; they are checked when the
    attack is used. The first attack poisons exactly the images it would
    poison on its own; later ones differ from their solo poison only where
    an earlier attack had taken an image they would have drawn. All the
    attacks are checked against ``X`` and ``y`` before any is applied.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl.attacks import (BackdoorAttack,
    ...                                   BlendedBackdoorAttack, MultiAttack)
    >>> X = np.zeros((150, 8, 8), dtype=np.uint8)
    >>> y = np.repeat([0, 1, 2], 50)
    >>> multi = MultiAttack([
    ...     BackdoorAttack(0, 1, trigger="pixel", position=(0, 0), color=255,
    ...                    eps=0.2, random_state=0),
    ...     BlendedBackdoorAttack(2, 1, alpha=0.1, eps=0.1, random_state=0),
    ... ])
    >>> X_p, y_p, mask, ids = multi.poison(X, y, return_ids=True)
    >>> int(mask.sum()), np.bincount(ids + 1).tolist()
    (15, [135, 10, 5])
    >>> int(multi.apply_trigger(X[:2], attack=0).sum())
    510
    """

    def __init__(self, attacks):
        self.attacks = attacks

    def __repr__(self):
        return f"{type(self).__name__}(attacks={self.attacks!r})"

    def poison(self, X, y, *, return_ids=False):
        """Poison a training set with every attack, on disjoint images.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Training images, integer or floating point. Flat rows need the
            attacks' ``image_shape``.
        y : array-like of shape (n,)
            Clean labels; must contain every attack's ``source``.
        return_ids : bool, default=False
            Also return which attack poisoned each image.

        Returns
        -------
        X_poisoned : ndarray
            Copy of ``X`` with each attack's trigger in the images it
            poisoned; same shape and dtype as ``X``.
        y_poisoned : ndarray of shape (n,)
            Copy of ``y`` with the images poisoned by attack ``k``
            relabelled as its ``target``; same dtype as ``y``.
        poison_mask : ndarray of shape (n,), dtype=bool
            True for the images any attack poisoned, as returned by a single
            attack's ``poison``.
        poison_ids : ndarray of shape (n,), dtype=intp
            Only with ``return_ids=True``: -1 for clean images, ``k`` for
            those poisoned by ``attacks[k]``. ``poison_mask`` is
            ``poison_ids >= 0``.

        Raises
        ------
        ValueError
            If ``attacks`` is invalid, an attack rejects ``X`` or ``y``, or
            a source class has too few clean images left for an attack.
        """
        attacks = self._check_attacks()
        checked = []
        for attack in attacks:
            X_k, layout, context = attack._validate(X)
            y_k, source_indices = attack._check_y(y, X_k.shape[0])
            checked.append((layout, context, source_indices))
        # Every attack converted X and y the same way (np.asarray), so the
        # last ones stand for all.
        X, y = X_k, y_k
        X_poisoned = np.array(X, copy=True, order="C")
        y_poisoned = y.copy()
        poison_ids = np.full(y.shape[0], -1, dtype=np.intp)
        for k, (attack, (layout, context, source_indices)) in enumerate(
            zip(attacks, checked, strict=True)
        ):
            rng = check_random_state(attack.random_state)
            chosen = attack._choose(source_indices, rng, taken=poison_ids >= 0)
            attack._write(X_poisoned, layout, chosen, context, rng)
            y_poisoned[chosen] = attack.target
            poison_ids[chosen] = k
        poison_mask = poison_ids >= 0
        if return_ids:
            return X_poisoned, y_poisoned, poison_mask, poison_ids
        return X_poisoned, y_poisoned, poison_mask

    def apply_trigger(self, X, attack=None):
        """Apply the trigger of one of the attacks to every image.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Images, integer or floating point.
        attack : int
            Index into ``attacks`` of the attack whose trigger to apply.
            Required: each attack has its own trigger and target, so
            there is no single trigger of the multi-attack.

        Returns
        -------
        X_triggered : ndarray
            ``attacks[attack].apply_trigger(X)``.

        Raises
        ------
        ValueError
            If ``attacks`` or ``attack`` is invalid, or the attack rejects
            ``X``.
        """
        attacks = self._check_attacks()
        if not _is_int(attack) or not 0 <= attack < len(attacks):
            raise ValueError(
                f"attack must be the index (0..{len(attacks) - 1}) of the "
                f"attack whose trigger to apply, got attack={attack!r}."
            )
        return attacks[attack].apply_trigger(X)

    def _check_attacks(self):
        attacks = self.attacks
        if (
            not isinstance(attacks, (list, tuple))
            or len(attacks) == 0
            or not all(isinstance(a, _BaseAttack) for a in attacks)
        ):
            raise ValueError(
                "attacks must be a non-empty list of BackdoorAttack, "
                "BlendedBackdoorAttack or VaryingBackdoorAttack instances, "
                f"got attacks={attacks!r}."
            )
        return list(attacks)
