"""The five block families. Importing this package registers them as layer types."""

from nasx.blocks.channelwise import ChannelwiseBlock
from nasx.blocks.dwsep import DwsepBlock
from nasx.blocks.group_shuffle import GroupShuffleBlock
from nasx.blocks.partial import PartialBlock
from nasx.blocks.standard import StandardBlock

FAMILIES = {cls.family: cls for cls in (StandardBlock, DwsepBlock, GroupShuffleBlock, PartialBlock, ChannelwiseBlock)}

__all__ = ["FAMILIES", "ChannelwiseBlock", "DwsepBlock", "GroupShuffleBlock", "PartialBlock", "StandardBlock"]
