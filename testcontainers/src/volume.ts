/** Removal of the socket volume, with a clear error while containers still use it. */
import { getContainerRuntimeClient } from 'testcontainers';

export async function removeVolume(name: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  const docker = client.container.dockerode;
  try {
    await docker.getVolume(name).remove();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) return;
    if (status === 409) {
      const users = await docker.listContainers({ all: true, filters: { volume: [name] } });
      const names = users.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12));
      throw new Error(
        `ferryd's socket volume ${name} is still used by ${names.join(', ')}: stop the app containers before ferryd (the volume is left; remove it with 'docker volume rm ${name}')`,
      );
    }
    throw err;
  }
}
