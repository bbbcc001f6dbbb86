from discovery.models.policies import BeaconPolicy
from discovery.models.variants import VariantAllele, VariantSource

__all__ = ["BeaconPolicy", "VariantAllele", "VariantSource"]
