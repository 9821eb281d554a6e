"""The five block families. Importing this package registers them as layer types and in FAMILIES."""

# isort: off
# Registration order is FAMILIES' order, the order messages list the families in.
from nasx.blocks.standard import StandardBlock
from nasx.blocks.dwsep import DwsepBlock
from nasx.blocks.group_shuffle import GroupShuffleBlock
from nasx.blocks.partial import PartialBlock
from nasx.blocks.channelwise import ChannelwiseBlock

# isort: on
from nasx.layers import FAMILIES

__all__ = ["FAMILIES", "ChannelwiseBlock", "DwsepBlock", "GroupShuffleBlock", "PartialBlock", "StandardBlock"]
