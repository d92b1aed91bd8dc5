"""The published class splits of the few-shot benchmarks (facts from the papers).

- CIFAR-100 (Krizhevsky 2009): 100 fine classes in 20 superclasses of 5;
  TFDS `cifar100` numbers both in alphabetical order (`label`, `coarse_label`).
- CIFAR-FS (Bertinetto et al. 2019, "Meta-learning with differentiable
  closed-form solvers"): 64 / 16 / 20 fine classes, chosen at random.
- FC100 (Oreshkin et al. 2018, "TADAM"): by superclass, 12 / 4 / 4
  superclasses = 60 / 20 / 20 classes (superclass ids 1, 2, 3, 4, 5, 6, 9, 10,
  15, 17, 18, 19 / 8, 11, 13, 16 / 0, 7, 12, 14).
- CUB-200-2011 (Chen et al. 2019, "A Closer Look at Few-shot
  Classification"): the 200 species in their numbered order (TFDS
  `caltech_birds2011` label = species number − 1 = index `i`); train
  `i % 2 == 0` (100), validation `i % 4 == 1` (50), test `i % 4 == 3` (50).
- mini-ImageNet (Ravi & Larochelle 2017): 64 / 16 / 20 ImageNet synsets.
- tiered-ImageNet (Ren et al. 2018): 351 / 97 / 160 synsets under 20 / 6 / 8
  of 34 super-categories (the split ships with the data; see
  `tiered_imagenet`).
"""

SPLITS = ("train", "validation", "test")

CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
# TFDS `cifar100`'s `coarse_label` and `label` names: both alphabetical.
CIFAR100_COARSE_NAMES = tuple(sorted(CIFAR100_SUPERCLASSES))
CIFAR100_FINE_NAMES = tuple(sorted(c for fine in CIFAR100_SUPERCLASSES.values() for c in fine))

CIFAR_FS_SPLIT = {
    "train": (
        "apple", "aquarium_fish", "bear", "bee", "bottle", "bowl", "boy", "bridge", "bus",
        "can", "castle", "caterpillar", "chair", "clock", "cloud", "cockroach", "couch", "cup",
        "dinosaur", "dolphin", "elephant", "forest", "girl", "hamster", "house", "kangaroo",
        "keyboard", "lawn_mower", "lion", "lizard", "lobster", "mountain", "mouse", "mushroom",
        "oak_tree", "orange", "orchid", "palm_tree", "pear", "pine_tree", "plate", "porcupine",
        "possum", "rabbit", "raccoon", "ray", "road", "seal", "shrew", "skunk", "skyscraper",
        "snake", "spider", "squirrel", "streetcar", "sunflower", "tank", "tiger", "train",
        "trout", "tulip", "turtle", "willow_tree", "wolf",
    ),
    "validation": (
        "beaver", "beetle", "butterfly", "camel", "cattle", "crab", "crocodile", "flatfish",
        "lamp", "maple_tree", "motorcycle", "otter", "sea", "shark", "television", "tractor",
    ),
    "test": (
        "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck",
        "plain", "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone",
        "wardrobe", "whale", "woman", "worm",
    ),
}

FC100_SPLIT = {
    "train": (
        "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "large_man-made_outdoor_things",
        "large_natural_outdoor_scenes", "reptiles", "trees", "vehicles_1", "vehicles_2",
    ),
    "validation": (
        "large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates",
        "small_mammals",
    ),
    "test": ("aquatic_mammals", "insects", "medium_mammals", "people"),
}

CUB_NUM_CLASSES = 200


def cub_split(index):
    """Chen et al.'s split of CUB species `index` (0..199): "train" when
    `index % 2 == 0`, "validation" when `index % 4 == 1`, else "test"
    (`index % 4 == 3`); every species falls in exactly one."""
    if index % 2 == 0:
        return "train"
    return "validation" if index % 4 == 1 else "test"


MINI_IMAGENET_SPLIT = {
    "train": (
        "n01532829", "n01558993", "n01704323", "n01749939", "n01770081", "n01843383",
        "n01910747", "n02074367", "n02089867", "n02091831", "n02101006", "n02105505",
        "n02108089", "n02108551", "n02108915", "n02111277", "n02113712", "n02120079",
        "n02165456", "n02457408", "n02606052", "n02687172", "n02747177", "n02795169",
        "n02823428", "n02966193", "n03017168", "n03047690", "n03062245", "n03207743",
        "n03220513", "n03337140", "n03347037", "n03400231", "n03476684", "n03527444",
        "n03676483", "n03838899", "n03854065", "n03888605", "n03908618", "n03924679",
        "n03998194", "n04067472", "n04243546", "n04251144", "n04258138", "n04275548",
        "n04296562", "n04389033", "n04435653", "n04443257", "n04509417", "n04515003",
        "n04596742", "n04604644", "n04612504", "n06794110", "n07584110", "n07697537",
        "n07747607", "n09246464", "n13054560", "n13133613",
    ),
    "validation": (
        "n01855672", "n02091244", "n02114548", "n02138441", "n02174001", "n02950826",
        "n02971356", "n02981792", "n03075370", "n03417042", "n03535780", "n03584254",
        "n03770439", "n03773504", "n03980874", "n09256479",
    ),
    "test": (
        "n01930112", "n01981276", "n02099601", "n02110063", "n02110341", "n02116738",
        "n02129165", "n02219486", "n02443484", "n02871525", "n03127925", "n03146219",
        "n03272010", "n03544143", "n03775546", "n04146614", "n04149813", "n04418357",
        "n04522168", "n07613480",
    ),
}
MINI_IMAGENET_IMAGES_PER_CLASS = 600

TIERED_IMAGENET_CLASSES = {"train": 351, "validation": 97, "test": 160}
TIERED_IMAGENET_SUPER_CATEGORIES = {"train": 20, "validation": 6, "test": 8}
# Images per split in Ren et al.'s release (779,165 in all).
TIERED_IMAGENET_IMAGES = {"train": 448695, "validation": 124261, "test": 206209}
